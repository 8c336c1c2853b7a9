import { api } from "../api.js";
import { h, replace, titleCase } from "../dom.js";

const VIEW_KEY = "hwe.view";

export async function workflowsPage(ctx) {
  ctx.setTitle("Workflows");
  const { workflows } = await api.workflows();
  let view = localStorage.getItem(VIEW_KEY) === "grid" ? "grid" : "table";
  const search = h("input", { type: "search", class: "grow", placeholder: "Search workflows…", "aria-label": "search workflows" });
  const tableBtn = h("button", { type: "button", title: "Table", "aria-label": "table view" }, "☰ Table");
  const gridBtn = h("button", { type: "button", title: "Grid", "aria-label": "grid view" }, "▦ Grid");
  const results = h("div", { id: "workflow-results" });

  const run = async (name, button) => {
    button.disabled = true;
    try {
      const { id } = await api.startRun(name);
      ctx.navigate("/runs/" + encodeURIComponent(id));
    } catch (err) {
      button.disabled = false;
      alert("Could not start the run: " + err.message);
    }
  };
  const runButton = (w) =>
    ctx.can("operator") && w.valid
      ? h("button", { type: "button", class: "primary", onclick: (ev) => { ev.stopPropagation(); run(w.name, ev.currentTarget); } }, "▶ Run")
      : null;
  const title = (w) => titleCase(w.workflow || w.name);
  const languages = (w) => (w.languages || []).map((l) => h("span", { class: "badge" }, l));
  const state = (w) => w.valid
    ? h("span", { class: "status succeeded" }, "valid")
    : h("span", { class: "status failed", title: (w.problems || []).map((p) => `${p.line}: ${p.message}`).join("\n") },
      `${(w.problems || []).length} problem${(w.problems || []).length === 1 ? "" : "s"}`);
  const href = (w) => "/workflows/" + encodeURIComponent(w.name);

  function draw() {
    const q = search.value.trim().toLowerCase();
    const shown = workflows.filter((w) =>
      !q || [w.name, w.workflow, w.description, w.file].some((s) => (s || "").toLowerCase().includes(q)));
    tableBtn.classList.toggle("active", view === "table");
    gridBtn.classList.toggle("active", view === "grid");
    if (workflows.length === 0) {
      replace(results, h("div", { class: "panel" },
        h("p", {}, "No workflows yet."),
        ctx.can("admin") ? h("a", { href: "/workflows/new", class: "button primary" }, "New workflow") : h("p", { class: "muted" }, "Add *.lua files to the workflows folder.")));
      return;
    }
    if (shown.length === 0) {
      replace(results, h("p", { class: "muted" }, "No workflow matches “", search.value, "”."));
      return;
    }
    if (view === "grid") {
      replace(results, h("div", { class: "grid" }, shown.map((w) =>
        h("div", { class: "card", "data-workflow": w.name },
          h("h3", {}, h("a", { href: href(w) }, title(w))),
          h("p", { class: "muted" }, w.description || "No description available"),
          h("div", {}, languages(w), w.schedule ? h("span", { class: "badge", title: "schedule" }, "⏱ " + w.schedule) : null),
          h("div", { class: "muted mono" }, w.file),
          h("div", { class: "foot" }, state(w), runButton(w))))));
      return;
    }
    replace(results, h("table", { class: "responsive" },
      h("thead", {}, h("tr", {}, ["Name", "Description", "Steps", "Schedule", "State", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, shown.map((w) =>
        h("tr", { class: "clickable", "data-workflow": w.name, onclick: () => ctx.navigate(href(w)) },
          h("td", { "data-label": "Name" }, h("a", { href: href(w) }, title(w)), h("div", { class: "muted mono" }, w.name)),
          h("td", { "data-label": "Description" }, w.description || h("span", { class: "muted" }, "No description available")),
          h("td", { "data-label": "Steps" }, String(w.steps), " ", languages(w)),
          h("td", { "data-label": "Schedule" }, w.schedule || "—"),
          h("td", { "data-label": "State" }, state(w)),
          h("td", {}, runButton(w)))))));
  }

  tableBtn.addEventListener("click", () => { view = "table"; localStorage.setItem(VIEW_KEY, view); draw(); });
  gridBtn.addEventListener("click", () => { view = "grid"; localStorage.setItem(VIEW_KEY, view); draw(); });
  search.addEventListener("input", draw);
  replace(ctx.main,
    h("div", { class: "head" },
      h("div", {}, h("h1", {}, "Workflows"), h("p", { class: "muted" }, "Select a workflow to see its graph, run it and follow its steps.")),
      h("div", { class: "actions" }, ctx.can("admin") ? h("a", { href: "/workflows/new", class: "button" }, "+ New workflow") : null)),
    h("div", { class: "toolbar" }, search, tableBtn, gridBtn),
    results);
  draw();
}
