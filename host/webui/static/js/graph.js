// The DAG drawing: steps laid out in columns by level (a root is level 0,
// every other step sits one column right of its deepest dependency), then
// ordered inside a column by the average position of their dependencies so
// edges cross less. layout is pure (tested under node); draw makes the SVG.

import { svg } from "./dom.js";

export const NODE_W = 170;
export const NODE_H = 48;
const GAP_X = 70;
const GAP_Y = 22;
const PAD = 16;

// layout places nodes [{id, depends_on}] and returns their boxes.
export function layout(nodes) {
  const byID = new Map(nodes.map((n) => [n.id, n]));
  const level = new Map();
  const visiting = new Set();
  const levelOf = (id) => {
    if (level.has(id)) return level.get(id);
    if (visiting.has(id)) return 0; // a cycle: the loader rejects these; do not loop
    visiting.add(id);
    let lv = 0;
    for (const d of byID.get(id)?.depends_on || []) {
      if (byID.has(d)) lv = Math.max(lv, levelOf(d) + 1);
    }
    visiting.delete(id);
    level.set(id, lv);
    return lv;
  };
  const columns = [];
  for (const n of nodes) {
    const lv = levelOf(n.id);
    (columns[lv] ||= []).push(n.id);
  }
  // Order each column by the mean row of its dependencies (barycentre).
  const row = new Map();
  columns.forEach((col, lv) => {
    if (lv > 0) {
      const key = (id) => {
        const deps = (byID.get(id).depends_on || []).filter((d) => row.has(d));
        return deps.length ? deps.reduce((s, d) => s + row.get(d), 0) / deps.length : 0;
      };
      col.sort((a, b) => key(a) - key(b) || (a < b ? -1 : a > b ? 1 : 0));
    }
    col.forEach((id, i) => row.set(id, i));
  });
  const tallest = Math.max(1, ...columns.map((c) => (c ? c.length : 0)));
  const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y;
  const boxes = new Map();
  columns.forEach((col, lv) => {
    const colHeight = col.length * NODE_H + (col.length - 1) * GAP_Y;
    const top = (height - colHeight) / 2;
    col.forEach((id, i) => {
      boxes.set(id, { id, level: lv, row: i, x: PAD + lv * (NODE_W + GAP_X), y: top + i * (NODE_H + GAP_Y) });
    });
  });
  const edges = [];
  for (const n of nodes) {
    for (const d of n.depends_on || []) if (byID.has(d)) edges.push({ from: d, to: n.id });
  }
  const width = PAD * 2 + columns.length * NODE_W + Math.max(0, columns.length - 1) * GAP_X;
  return { width, height, boxes, edges, levels: columns.length };
}

function shorten(s, n) {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

// draw renders nodes [{id, language, depends_on}] into container and
// returns controls to colour nodes by status and mark the selected one.
export function draw(container, nodes, { onSelect } = {}) {
  const L = layout(nodes);
  const root = svg("svg", {
    class: "dag", width: L.width, height: L.height, viewBox: `0 0 ${L.width} ${L.height}`,
    role: "img", "aria-label": "workflow graph",
  });
  root.appendChild(svg("defs", {},
    svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }))));
  const edgeEls = [];
  for (const e of L.edges) {
    const a = L.boxes.get(e.from), b = L.boxes.get(e.to);
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const mx = (x1 + x2) / 2;
    const path = svg("path", { class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" });
    edgeEls.push({ ...e, el: path });
    root.appendChild(path);
  }
  const nodeEls = new Map();
  for (const n of nodes) {
    const b = L.boxes.get(n.id);
    const g = svg("g", { class: "node pending", transform: `translate(${b.x},${b.y})`, tabindex: 0, "data-step": n.id },
      svg("title", {}, n.id + (n.language ? " (" + n.language + ")" : "")),
      svg("rect", { width: NODE_W, height: NODE_H, rx: 8 }),
      svg("text", { x: 12, y: 20 }, shorten(n.id, 20)),
      svg("text", { x: 12, y: 37, class: "lang" }, n.language || ""),
    );
    if (onSelect) {
      g.addEventListener("click", () => onSelect(n.id));
      g.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          onSelect(n.id);
        }
      });
    }
    nodeEls.set(n.id, g);
    root.appendChild(g);
  }
  container.replaceChildren(root);
  const status = new Map();
  return {
    setStatus(id, s) {
      const g = nodeEls.get(id);
      if (!g) return;
      status.set(id, s);
      const selected = g.classList.contains("selected");
      g.setAttribute("class", "node " + (s || "pending") + (selected ? " selected" : ""));
      for (const e of edgeEls) {
        if (e.from === id) e.el.setAttribute("class", "edge" + (s === "succeeded" ? " done" : ""));
      }
    },
    select(id) {
      for (const [name, g] of nodeEls) g.classList.toggle("selected", name === id);
    },
    layout: L,
  };
}
