import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { runTable } from "./workflow.js";

const PAGE = 25;

// The run history: filters by workflow and status, paging, and a refresh
// while some listed run is still going.
export async function runsPage(ctx) {
  ctx.setTitle("Runs");
  const params = new URLSearchParams(location.search);
  const workflow = h("input", { type: "search", placeholder: "workflow", value: params.get("workflow") || "", "aria-label": "filter by workflow" });
  const status = h("select", { "aria-label": "filter by status" },
    ["", "queued", "running", "succeeded", "failed", "cancelled", "interrupted"].map((s) =>
      h("option", { value: s, selected: s === (params.get("status") || "") }, s || "any status")));
  const box = h("div", {});
  const pager = h("div", { class: "pager" });
  let offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  let timer = null;
  ctx.onLeave(() => clearTimeout(timer));

  async function load() {
    clearTimeout(timer);
    const q = { limit: PAGE, offset };
    if (workflow.value.trim()) q.workflow = workflow.value.trim();
    if (status.value) q.status = status.value;
    const url = new URLSearchParams(q);
    url.delete("limit");
    if (!offset) url.delete("offset");
    history.replaceState(null, "", "/runs" + (url.toString() ? "?" + url : ""));
    let res;
    try {
      res = await api.runs(q);
    } catch (err) {
      replace(box, h("div", { class: "banner error" }, err.message));
      return;
    }
    replace(box, res.runs.length ? runTable(ctx, res.runs) : h("p", { class: "muted" }, "No runs match."));
    const last = Math.min(offset + res.runs.length, res.total);
    replace(pager,
      h("span", { class: "muted" }, res.total ? `${offset + 1}–${last} of ${res.total}` : ""),
      h("button", { type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "← Newer"),
      h("button", { type: "button", disabled: last >= res.total, onclick: () => { offset += PAGE; load(); } }, "Older →"));
    if (res.runs.some((r) => r.status === "running" || r.status === "queued")) timer = setTimeout(load, 2000);
  }
  let debounce = null;
  workflow.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => { offset = 0; load(); }, 300); });
  status.addEventListener("change", () => { offset = 0; load(); });
  replace(ctx.main, h("h1", {}, "Runs"), h("div", { class: "toolbar" }, workflow, status), box, pager);
  await load();
}
