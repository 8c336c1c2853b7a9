// The workflow source editor: a plain textarea over a highlighted copy of
// its text (the textarea's own text is transparent), line numbers in a
// gutter, and validation problems marked at their lines.

import { h } from "./dom.js";
import { tokenize } from "./lua.js";

const CLASS = { kw: "tok-kw", str: "tok-str", num: "tok-num", com: "tok-com", fn: "tok-fn" };

export function createEditor({ value = "", onChange } = {}) {
  const gutter = h("div", { class: "gutter", "aria-hidden": "true" });
  const code = h("pre", { "aria-hidden": "true" });
  const marks = h("div", { class: "marks", "aria-hidden": "true", style: "position:absolute;left:0;right:0;top:0;pointer-events:none" });
  const ta = h("textarea", { spellcheck: "false", autocapitalize: "off", autocomplete: "off", "aria-label": "workflow source", wrap: "off" });
  const area = h("div", { class: "area" }, marks, code, ta);
  const el = h("div", { class: "editor" }, gutter, area);
  let problems = [];

  const lineHeight = () => parseFloat(getComputedStyle(ta).lineHeight) || 19.5;

  function highlight() {
    const frag = document.createDocumentFragment();
    for (const t of tokenize(ta.value)) {
      const cls = CLASS[t.type];
      if (cls) {
        const span = document.createElement("span");
        span.className = cls;
        span.textContent = t.text;
        frag.appendChild(span);
      } else {
        frag.appendChild(document.createTextNode(t.text));
      }
    }
    frag.appendChild(document.createTextNode("\n ")); // room for a trailing newline
    code.replaceChildren(frag);
    renderGutter();
  }

  function renderGutter() {
    const lines = ta.value.split("\n").length;
    const byLine = new Map();
    for (const p of problems) if (p.line > 0) byLine.set(p.line, (byLine.has(p.line) ? byLine.get(p.line) + "\n" : "") + p.message);
    const frag = document.createDocumentFragment();
    for (let i = 1; i <= lines; i++) {
      if (byLine.has(i)) frag.appendChild(h("span", { class: "bad", title: byLine.get(i), "data-line": i }, String(i)));
      else frag.appendChild(document.createTextNode(String(i)));
      frag.appendChild(document.createTextNode("\n"));
    }
    gutter.replaceChildren(frag);
    const lh = lineHeight();
    const top = parseFloat(getComputedStyle(ta).paddingTop) || 12;
    marks.replaceChildren(...[...byLine.keys()].map((line) =>
      h("div", { class: "line-bad", style: `position:absolute;left:0;right:0;height:${lh}px;top:${top + (line - 1) * lh}px` })));
    syncScroll();
  }

  function syncScroll() {
    code.scrollTop = ta.scrollTop;
    code.scrollLeft = ta.scrollLeft;
    gutter.scrollTop = ta.scrollTop;
    marks.style.transform = `translateY(${-ta.scrollTop}px)`;
  }

  ta.addEventListener("input", () => {
    highlight();
    if (onChange) onChange(ta.value);
  });
  ta.addEventListener("scroll", syncScroll);
  ta.addEventListener("keydown", (ev) => {
    if (ev.key === "Tab" && !ev.shiftKey && !ev.ctrlKey && !ev.metaKey) {
      ev.preventDefault();
      const { selectionStart: s, selectionEnd: e } = ta;
      ta.setRangeText("  ", s, e, "end");
      ta.dispatchEvent(new Event("input"));
    }
  });

  ta.value = value;
  highlight();

  return {
    el,
    textarea: ta,
    getValue: () => ta.value,
    setValue(v) {
      ta.value = v;
      highlight();
    },
    setProblems(ps) {
      problems = ps || [];
      renderGutter();
    },
    // goToLine puts the caret at the start of a line and scrolls to it.
    goToLine(line) {
      const lines = ta.value.split("\n");
      let pos = 0;
      for (let i = 0; i < Math.min(line - 1, lines.length); i++) pos += lines[i].length + 1;
      ta.focus();
      ta.setSelectionRange(pos, pos);
      ta.scrollTop = Math.max(0, (line - 4) * lineHeight());
      syncScroll();
    },
  };
}
