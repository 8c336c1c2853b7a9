// Test fixture for hwe's wasm runner, written with the AssemblyScript guest
// SDK: the host API through the SDK, JSON escaping, and abort handling.
// Built into testdata/wasm/asguest.wasm by `make wasm-fixtures`.

import { JSON } from "assemblyscript-json/assembly";
import * as hwe from "../assembly/index";

function report(out: hwe.Writer, name: string, r: hwe.HostResult, value: string): void {
  out.key(name);
  if (r.ok) out.string(value);
  else out.string("error[" + r.capability + "]: " + r.error);
}

export function host(): i32 {
  const out = new hwe.Writer().beginObject();
  hwe.log("hello from the AssemblyScript guest");
  report(out, "progress", hwe.progress(0.5, "half way"), "ok");
  report(out, "kv_put", hwe.kvPut("greeting", "héllo \"quoted\"\n"), "ok");
  const got = hwe.kvGet("greeting");
  report(out, "kv_get", got, got.text + " found=" + (got.found ? "true" : "false"));
  const s = hwe.secret("API_KEY");
  report(out, "secret", s, s.text);
  const h = hwe.httpFetch("POST", "http://127.0.0.1:1/", "ping");
  let summary = "";
  if (h.ok && h.value !== null && (<JSON.Value>h.value).isObj) {
    const v = <JSON.Obj>h.value;
    const status = v.getInteger("status");
    const body = v.getString("body");
    summary = (status !== null ? status.valueOf().toString() : "?") + " " + (body !== null ? body.valueOf() : "");
  }
  report(out, "http", h, summary);
  hwe.output(out.endObject().toString());
  return 0;
}

// Echoes every string input back with quote() and the numbers with number(),
// so tests can check the SDK's JSON writing on awkward text.
export function roundtrip(): i32 {
  const inputs = hwe.inputs();
  const names = inputs.keys.slice(0);
  names.sort();
  const out = new hwe.Writer().beginObject();
  for (let i = 0; i < names.length; i++) {
    const v = inputs.get(names[i]);
    if (v === null) continue;
    out.key(names[i]);
    if (v.isString) out.string((<JSON.Str>v).valueOf());
    else if (v.isInteger) out.int((<JSON.Integer>v).valueOf());
    else if (v.isFloat) out.float((<JSON.Float>v).valueOf());
    else out.null();
  }
  hwe.output(out.endObject().toString());
  return 0;
}

export function fails(): i32 {
  return hwe.fail("nothing to do: ünïcode message");
}

// Indexing past the end aborts; the SDK's abort says where.
export function aborts(): i32 {
  const a = new Array<i32>(1);
  return a[5];
}
