import { h, svg, replace } from "../dom.js";

export async function notFoundPage(ctx) {
  ctx.setTitle("Page not found");
  replace(ctx.main, h("div", { class: "notfound" },
    svg("svg", { width: 96, height: 96, viewBox: "0 0 96 96", "aria-hidden": "true" },
      svg("circle", { cx: 48, cy: 48, r: 44, fill: "none", stroke: "currentColor", "stroke-width": 4, opacity: 0.35 }),
      svg("text", { x: 48, y: 64, "text-anchor": "middle", "font-size": 48, fill: "currentColor", opacity: 0.6 }, "?")),
    h("p", { class: "big" }, "404"),
    h("h1", {}, "Page Not Found"),
    h("p", { class: "muted" }, "The page you're looking for doesn't exist or has been moved."),
    h("a", { href: "/", class: "button" }, "← Back to Workflows")));
}
