import { api, streamEvents } from "../api.js";
import { h, replace, statusBadge, formatDuration, formatTime, pretty } from "../dom.js";
import { draw } from "../graph.js";

// The run page: the DAG with nodes coloured by step status, updated live
// from the run's event stream, the steps with their outputs and streaming
// logs, and cancel / retry.
export async function runPage(ctx, id) {
  let run;
  try {
    run = await api.run(id);
  } catch (err) {
    if (err.status === 404 || err.status === 400) {
      ctx.setTitle("Run not found");
      replace(ctx.main, h("div", { class: "banner error" }, "No run “", id, "”."), h("a", { href: "/runs" }, "← All runs"));
      return;
    }
    throw err;
  }
  ctx.setTitle("Run " + id.slice(-8));

  // Live state, folded from events like the server does.
  const steps = new Map(run.steps.map((s) => [s.name, { ...s }]));
  const logs = new Map(run.steps.map((s) => [s.name, []]));
  let selected = (run.steps.find((s) => s.status === "failed") || run.steps[0] || {}).name;

  const header = h("div", { class: "head" });
  const errorBox = h("div", {});
  const graphBox = h("div", { class: "graph-wrap", id: "run-graph" });
  const stepList = h("div", { class: "steps", id: "steps" });
  const detail = h("div", { class: "step-detail panel", id: "step-detail" });
  const outputPre = h("pre", { id: "step-output" });
  const logPre = h("pre", { class: "logs", id: "step-logs" });

  replace(ctx.main,
    h("a", { href: "/workflows/" + encodeURIComponent(run.workflow_id) }, "← " + run.workflow_id),
    header, errorBox, graphBox,
    h("div", { class: "run-layout" }, h("div", {}, h("h2", {}, "Steps"), stepList), h("div", {}, h("h2", {}, "Step"), detail)));

  const nodes = run.steps.map((s) => ({ id: s.name, language: s.language, depends_on: s.depends_on || [] }));
  const graph = draw(graphBox, nodes, { onSelect: (name) => select(name) });

  function select(name) {
    selected = name;
    graph.select(name);
    renderSteps();
    renderDetail();
  }

  function renderHeader() {
    const active = run.status === "queued" || run.status === "running";
    const retryable = ["failed", "cancelled", "interrupted"].includes(run.status);
    const actions = [];
    if (ctx.can("operator") && active) {
      actions.push(h("button", { type: "button", class: "danger", id: "cancel-button", onclick: async (ev) => {
        ev.currentTarget.disabled = true;
        try {
          await api.cancel(id);
        } catch (err) {
          alert(err.message);
        }
      } }, "■ Cancel"));
    }
    if (ctx.can("operator") && retryable) {
      actions.push(h("button", { type: "button", class: "primary", id: "retry-button", title: "re-run the steps that did not succeed, reusing the outputs of those that did", onclick: async (ev) => {
        ev.currentTarget.disabled = true;
        try {
          await api.retry(id);
          run.status = "queued";
          for (const s of steps.values()) {
            if (s.status !== "succeeded") Object.assign(s, { status: "pending", error: "", output: null, duration_ms: 0, attempts: 0 });
          }
          for (const name of logs.keys()) if (steps.get(name).status !== "succeeded") logs.set(name, []);
          refreshAll();
          follow();
        } catch (err) {
          alert(err.message);
          ev.currentTarget.disabled = false;
        }
      } }, "↻ Retry failed steps"));
    }
    if (ctx.can("operator") && !active) {
      actions.push(h("button", { type: "button", onclick: async () => {
        try {
          const r = await api.startRun(run.workflow_id);
          ctx.navigate("/runs/" + encodeURIComponent(r.id));
        } catch (err) {
          alert(err.message);
        }
      } }, "▶ Run again"));
    }
    replace(header,
      h("div", {},
        h("h1", {}, run.workflow, " ", h("span", { class: "muted mono" }, "#" + id.slice(-8))),
        h("div", { id: "run-status" }, statusBadge(run.status),
          run.duration_ms && !active ? h("span", { class: "muted" }, " in " + formatDuration(run.duration_ms)) : null),
        h("dl", { class: "kv" },
          h("dt", {}, "Run"), h("dd", { class: "mono" }, id),
          h("dt", {}, "Trigger"), h("dd", {}, (run.trigger || "—") + (run.actor ? " by " + run.actor : "")),
          h("dt", {}, "Created"), h("dd", {}, formatTime(run.created_at)),
          run.attempt > 1 ? [h("dt", {}, "Attempt"), h("dd", {}, String(run.attempt))] : null,
          run.input !== undefined ? [h("dt", {}, "Input"), h("dd", {}, h("code", {}, JSON.stringify(run.input)))] : null)),
      h("div", { class: "actions" }, actions));
    replace(errorBox, run.error ? h("div", { class: "banner error", id: "run-error" }, run.error) : null);
  }

  function renderSteps() {
    replace(stepList, [...steps.values()].map((s) =>
      h("button", { type: "button", class: "step-row" + (s.name === selected ? " selected" : ""), "data-step": s.name, onclick: () => select(s.name) },
        h("span", { class: "name" }, s.name),
        h("span", { class: "badge" }, s.language),
        statusBadge(s.status),
        h("span", { class: "muted" }, s.duration_ms ? formatDuration(s.duration_ms) : ""))));
  }

  function renderDetail() {
    const s = steps.get(selected);
    if (!s) {
      replace(detail, h("p", { class: "muted" }, "Select a step."));
      return;
    }
    outputPre.textContent = s.status === "succeeded" ? pretty(s.output) : s.output === null || s.output === undefined ? "—" : pretty(s.output);
    renderLogs();
    replace(detail,
      h("h3", {}, s.name, " ", statusBadge(s.status)),
      h("dl", { class: "kv" },
        h("dt", {}, "Language"), h("dd", {}, s.language),
        h("dt", {}, "Attempts"), h("dd", {}, String(s.attempts || 0)),
        h("dt", {}, "Duration"), h("dd", {}, s.duration_ms ? formatDuration(s.duration_ms) : "—"),
        s.depends_on && s.depends_on.length ? [h("dt", {}, "Depends on"), h("dd", {}, s.depends_on.join(", "))] : null),
      s.error ? h("div", { class: "banner error" }, s.error) : null,
      h("h4", {}, "Output"), outputPre,
      h("h4", {}, "Logs"), logPre);
  }

  function renderLogs() {
    const lines = logs.get(selected) || [];
    if (!lines.length) {
      logPre.textContent = "(no log lines)";
      return;
    }
    logPre.replaceChildren(...lines.map((l) => h("div", { class: l.stream === "stderr" ? "stderr" : "" }, l.line)));
    logPre.scrollTop = logPre.scrollHeight;
  }

  function refreshAll() {
    for (const s of steps.values()) graph.setStatus(s.name, s.status);
    graph.select(selected);
    renderHeader();
    renderSteps();
    renderDetail();
  }

  // apply folds one event into the page.
  function apply(ev) {
    const d = ev.data || {};
    const s = d.step ? steps.get(d.step) : null;
    switch (ev.event) {
      case "run_started":
        run.status = "running";
        break;
      case "run_resumed":
        run.status = "queued";
        for (const st of steps.values()) {
          if (st.status !== "succeeded") {
            Object.assign(st, { status: "pending", error: "", output: null, duration_ms: 0, attempts: 0 });
            logs.set(st.name, []);
          }
        }
        refreshAll();
        return;
      case "step_started":
        if (s) Object.assign(s, { status: "running", error: "", attempts: Math.max(s.attempts || 0, d.attempt || 1) });
        break;
      case "step_retry":
        if (s) s.error = d.error || "";
        break;
      case "output":
        if (s) s.output = d.output;
        break;
      case "step_finished":
        if (s && !(d.attempt === 0 && d.status === "succeeded" && s.status === "succeeded")) {
          Object.assign(s, { status: d.status, error: d.error || "", duration_ms: d.duration_ms || 0 });
          if (d.attempt) s.attempts = d.attempt;
        }
        break;
      case "log":
        if (s) {
          logs.get(d.step).push({ stream: d.stream, line: d.line });
          if (d.step === selected) {
            if (logPre.textContent === "(no log lines)") logPre.replaceChildren();
            logPre.appendChild(h("div", { class: d.stream === "stderr" ? "stderr" : "" }, d.line));
            logPre.scrollTop = logPre.scrollHeight;
          }
        }
        return;
      case "run_finished":
      case "run_interrupted":
        Object.assign(run, { status: d.status, error: d.error || "", duration_ms: d.duration_ms || run.duration_ms });
        break;
      case "end":
        // The stream is over: take the stored run as the final word.
        api.run(id).then((r) => {
          run = r;
          for (const st of r.steps) Object.assign(steps.get(st.name) || {}, st);
          refreshAll();
        }).catch(() => {});
        return;
      default:
        return;
    }
    if (s) graph.setStatus(s.name, s.status);
    if (ev.event.startsWith("run_")) renderHeader();
    renderSteps();
    if (!s || s.name === selected) renderDetail();
  }

  let stream = null;
  function follow() {
    if (stream) stream.stop();
    // Replay from the start: logs are only in the event stream.
    for (const name of logs.keys()) logs.set(name, []);
    stream = streamEvents(id, apply);
  }
  ctx.onLeave(() => stream && stream.stop());

  refreshAll();
  follow();
}
