import { api } from "../api.js";
import { h, replace, statusBadge, formatDuration, formatTime, titleCase } from "../dom.js";
import { draw } from "../graph.js";

export async function workflowPage(ctx, name) {
  let w;
  try {
    w = await api.workflow(name);
  } catch (err) {
    if (err.status === 404 || err.status === 400) {
      ctx.setTitle("Not found");
      replace(ctx.main, h("div", { class: "banner error" }, "No workflow named “", name, "”."), h("a", { href: "/" }, "← Back to Workflows"));
      return;
    }
    throw err;
  }
  ctx.setTitle(w.workflow || w.name);
  const graph = h("div", { class: "graph-wrap" });
  const runsBox = h("div", {}, h("p", { class: "muted" }, "Loading runs…"));
  const versionsBox = h("div", {});
  const runBtn = ctx.can("operator") && w.valid ? h("button", { type: "button", class: "primary", id: "run-button" }, "▶ Run Workflow") : null;
  if (runBtn) {
    runBtn.addEventListener("click", async () => {
      runBtn.disabled = true;
      runBtn.textContent = "Starting…";
      try {
        const { id } = await api.startRun(name);
        ctx.navigate("/runs/" + encodeURIComponent(id));
      } catch (err) {
        runBtn.disabled = false;
        runBtn.textContent = "▶ Run Workflow";
        alert("Could not start the run: " + err.message);
      }
    });
  }
  const del = ctx.can("admin") ? h("button", { type: "button", class: "danger", onclick: async () => {
    if (!confirm(`Delete workflow ${name}? Its source stays available as a version.`)) return;
    try {
      await api.deleteWorkflow(name);
      ctx.navigate("/");
    } catch (err) {
      alert(err.message);
    }
  } }, "Delete") : null;

  replace(ctx.main,
    h("a", { href: "/" }, "← Back to Workflows"),
    h("div", { class: "head" },
      h("div", {},
        h("h1", {}, titleCase(w.workflow || w.name)),
        h("p", { class: "muted" }, w.description || "No description available"),
        h("p", { class: "muted mono" }, w.file),
        h("div", {}, (w.languages || []).map((l) => h("span", { class: "badge" }, l)), " ",
          w.schedule ? h("span", { class: "badge" }, "⏱ " + w.schedule + (w.next_run ? " · next " + formatTime(w.next_run) : "")) : null)),
      h("div", { class: "actions" }, runBtn,
        ctx.can("admin") ? h("a", { href: `/workflows/${encodeURIComponent(name)}/edit`, class: "button" }, "✎ Edit") : null, del)),
    w.valid ? null : h("div", { class: "banner error" },
      h("strong", {}, "This workflow is invalid:"),
      h("ul", {}, (w.problems || []).map((p) => h("li", {}, (p.line ? `line ${p.line}: ` : "") + p.message)))),
    w.graph ? h("h2", {}, "Graph") : null,
    w.graph ? graph : null,
    h("h2", {}, "Recent runs"), runsBox,
    h("h2", {}, "Versions"), versionsBox,
    h("h2", {}, "Source"), h("pre", { class: "source" }, w.source));

  if (w.graph) {
    const nodes = w.graph.nodes.map((n) => ({ id: n.id, language: n.language, depends_on: n.depends_on }));
    draw(graph, nodes);
  }
  loadRuns(ctx, name, runsBox);
  loadVersions(ctx, name, versionsBox);
}

async function loadRuns(ctx, name, box) {
  try {
    const { runs, total } = await api.runs({ workflow: name, limit: 10 });
    if (!runs.length) {
      replace(box, h("p", { class: "muted" }, "No runs yet."));
      return;
    }
    replace(box, runTable(ctx, runs), total > runs.length ? h("p", {}, h("a", { href: "/runs?workflow=" + encodeURIComponent(name) }, `All ${total} runs →`)) : null);
  } catch (err) {
    replace(box, h("p", { class: "error-text" }, err.message));
  }
}

export function runTable(ctx, runs) {
  return h("table", { class: "responsive" },
    h("thead", {}, h("tr", {}, ["Run", "Workflow", "Status", "Trigger", "Started", "Duration"].map((c) => h("th", {}, c)))),
    h("tbody", {}, runs.map((r) => {
      const href = "/runs/" + encodeURIComponent(r.id);
      return h("tr", { class: "clickable", onclick: () => ctx.navigate(href), "data-run": r.id },
        h("td", { "data-label": "Run" }, h("a", { href, class: "mono" }, r.id.slice(-8))),
        h("td", { "data-label": "Workflow" }, r.workflow_id),
        h("td", { "data-label": "Status" }, statusBadge(r.status), r.attempt > 1 ? h("span", { class: "muted" }, ` (attempt ${r.attempt})`) : null),
        h("td", { "data-label": "Trigger" }, r.trigger || ""),
        h("td", { "data-label": "Started" }, formatTime(r.started_at || r.created_at)),
        h("td", { "data-label": "Duration" }, r.finished_at ? formatDuration(r.duration_ms) : "—"));
    })));
}

async function loadVersions(ctx, name, box) {
  let versions;
  try {
    ({ versions } = await api.versions(name));
  } catch (err) {
    replace(box, h("p", { class: "error-text" }, err.message));
    return;
  }
  if (!versions.length) {
    replace(box, h("p", { class: "muted" }, "No versions recorded yet."));
    return;
  }
  const shown = h("div", {});
  replace(box, h("table", { class: "responsive" },
    h("thead", {}, h("tr", {}, ["Version", "When", "By", "How", ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, versions.map((v) => h("tr", {},
      h("td", { "data-label": "Version" }, String(v.version)),
      h("td", { "data-label": "When" }, formatTime(v.created_at)),
      h("td", { "data-label": "By" }, v.actor || "—"),
      h("td", { "data-label": "How" }, v.action),
      h("td", {}, h("button", { type: "button", onclick: async () => {
        const full = await api.version(name, v.version);
        replace(shown, h("h3", {}, `Version ${v.version}`),
          ctx.can("admin") ? h("button", { type: "button", onclick: async () => {
            if (!confirm(`Restore version ${v.version}?`)) return;
            try {
              await api.putWorkflow(name, full.source);
              ctx.navigate("/workflows/" + encodeURIComponent(name), { replace: true });
            } catch (err) {
              alert(err.message);
            }
          } }, "Restore this version") : null,
          h("pre", {}, full.source));
      } }, "View")))))), shown);
}
