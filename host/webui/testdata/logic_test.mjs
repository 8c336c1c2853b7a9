// Unit tests of the UI's pure modules, run under node by webui_test.go
// (the modules are copied next to a package.json that marks them ES modules).
import assert from "node:assert/strict";
import { tokenize } from "./js/lua.js";
import { layout } from "./js/graph.js";
import { parseSSE } from "./js/api.js";
import { titleCase, formatDuration, pretty } from "./js/dom.js";

// The tokenizer covers the source exactly and classifies Lua's pieces.
const src = `-- a workflow
workflow = {
  name = "demo", count = 0x1F, ratio = 2.5e3,
  --[[ block
  comment ]]
  steps = { a = { language = 'lua', code = [==[ function run() return "<script>" end ]==] } },
}
local s = "unterminated
function f(x) return x end`;
const toks = tokenize(src);
assert.equal(toks.map((t) => t.text).join(""), src, "tokens must cover the source exactly");
const of = (type) => toks.filter((t) => t.type === type).map((t) => t.text);
assert.deepEqual(of("com"), ["-- a workflow", "--[[ block\n  comment ]]"]);
assert.ok(of("str").includes('"demo"') && of("str").includes("'lua'"));
assert.ok(of("str").includes('[==[ function run() return "<script>" end ]==]'), "long strings are one token");
assert.ok(of("str").includes('"unterminated'), "an unterminated string stops at the line end");
assert.deepEqual(of("num"), ["0x1F", "2.5e3"]);
assert.ok(of("kw").includes("local") && of("kw").includes("function") && of("kw").includes("return"));
assert.ok(of("fn").includes("f"));
assert.equal(tokenize("").length, 0);

// Layout: levels by longest path, no overlaps, barycentre ordering.
const L = layout([
  { id: "a" }, { id: "b", depends_on: ["a"] }, { id: "c", depends_on: ["a"] },
  { id: "d", depends_on: ["b", "c"] }, { id: "e", depends_on: ["a", "d"] }, { id: "lonely" },
]);
const lv = (id) => L.boxes.get(id).level;
assert.deepEqual(["a", "b", "c", "d", "e", "lonely"].map(lv), [0, 1, 1, 2, 3, 0]);
assert.equal(L.levels, 4);
assert.equal(L.edges.length, 6);
const seen = new Set();
for (const b of L.boxes.values()) {
  const key = b.x + "," + b.y;
  assert.ok(!seen.has(key), "two nodes share a position");
  seen.add(key);
  assert.ok(b.x >= 0 && b.y >= 0 && b.x < L.width && b.y < L.height);
}
// A dependency cycle (never produced by the loader) must not hang.
layout([{ id: "x", depends_on: ["y"] }, { id: "y", depends_on: ["x"] }]);

// SSE parsing keeps incomplete events for the next chunk.
let r = parseSSE('id: 1\nevent: log\ndata: {"line":"a"}\n\n: keep-alive\n\nid: 2\nevent: out');
assert.equal(r.events.length, 1);
assert.equal(r.events[0].event, "log");
assert.equal(r.rest, "id: 2\nevent: out");
r = parseSSE(r.rest + 'put\ndata: {"x":1}\n\n');
assert.deepEqual(r.events, [{ id: "2", event: "output", data: '{"x":1}' }]);

assert.equal(titleCase("data_pipeline"), "Data Pipeline");
assert.equal(formatDuration(1500), "1.50 s");
assert.equal(pretty({ a: [1, "<b>"] }), '{\n  "a": [\n    1,\n    "<b>"\n  ]\n}');
console.log("ok");
