import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { createEditor } from "../editor.js";

const TEMPLATE = `workflow = {
  name = "my_workflow",
  description = "what it does",
  steps = {
    hello = {
      language = "lua",
      code = [[
function run()
  return { message = "hello" }
end
]],
    },
  },
}
`;

// The source editor: Lua highlighting, validation as you type (problems at
// their lines), and save, which the server validates again.
export async function editorPage(ctx, name) {
  const isNew = name === null;
  ctx.setTitle(isNew ? "New workflow" : "Edit " + name);
  if (!ctx.can("admin")) {
    replace(ctx.main, h("div", { class: "banner error" }, "Editing workflows needs the admin role."));
    return;
  }
  let source = TEMPLATE;
  if (!isNew) {
    try {
      source = (await api.workflow(name)).source;
    } catch (err) {
      if (err.status === 404) {
        replace(ctx.main, h("div", { class: "banner error" }, "No workflow named “", name, "”."));
        return;
      }
      throw err;
    }
  }
  const nameInput = isNew ? h("input", { type: "text", id: "workflow-name", placeholder: "file name (letters, digits, _ - .)", pattern: "[A-Za-z0-9_][A-Za-z0-9_.\\-]*", required: true }) : null;
  const problemsList = h("ul", { class: "problems", id: "problems", "aria-live": "polite" });
  const status = h("span", { class: "muted", id: "validation-status" });
  const save = h("button", { type: "button", class: "primary", id: "save-button" }, "Save");
  let editor;
  let seq = 0;
  let timer = null;

  const currentName = () => (isNew ? nameInput.value.trim() : name);

  function showProblems(problems) {
    editor.setProblems(problems);
    if (!problems.length) {
      replace(problemsList, h("li", { class: "ok" }, "✓ No problems found."));
      status.textContent = "valid";
      return;
    }
    status.textContent = `${problems.length} problem${problems.length === 1 ? "" : "s"}`;
    replace(problemsList, problems.map((p) =>
      h("li", { "data-line": p.line, onclick: () => p.line && editor.goToLine(p.line) },
        h("strong", {}, p.line ? `line ${p.line}: ` : ""), p.message)));
  }

  async function validate() {
    const mine = ++seq;
    status.textContent = "checking…";
    try {
      const res = await api.validate(currentName() || "workflow", editor.getValue());
      if (mine === seq) showProblems(res.problems || []);
    } catch (err) {
      if (mine === seq) status.textContent = err.message;
    }
  }

  editor = createEditor({
    value: source,
    onChange: () => {
      clearTimeout(timer);
      timer = setTimeout(validate, 350);
    },
  });
  ctx.onLeave(() => clearTimeout(timer));

  save.addEventListener("click", async () => {
    const n = currentName();
    if (!n) {
      nameInput.focus();
      status.textContent = "give the workflow a file name";
      return;
    }
    save.disabled = true;
    try {
      await api.putWorkflow(n, editor.getValue());
      ctx.navigate("/workflows/" + encodeURIComponent(n));
    } catch (err) {
      save.disabled = false;
      if (err.problems && err.problems.length) showProblems(err.problems);
      else status.textContent = err.message;
    }
  });

  replace(ctx.main,
    h("a", { href: isNew ? "/" : "/workflows/" + encodeURIComponent(name) }, "← Back"),
    h("div", { class: "head" },
      h("h1", {}, isNew ? "New workflow" : "Edit " + name),
      h("div", { class: "actions" }, status, save)),
    isNew ? h("div", { class: "toolbar" }, h("label", { for: "workflow-name" }, "Name"), nameInput, h("span", { class: "muted" }, ".lua")) : null,
    editor.el,
    problemsList);
  validate();
}
