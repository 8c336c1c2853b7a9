// hwe's guest SDK for AssemblyScript: write a workflow step as an exported
// function that reads the step's inputs and sets an output.
//
//   import * as hwe from "../assembly";   // or "@hwe/assemblyscript-sdk"
//   import { JSON } from "assemblyscript-json/assembly";
//
//   export function count(): i32 {
//     const inputs = hwe.inputs();           // {dependency: output, ...}
//     const out = new hwe.Writer().beginObject();
//     out.key("keys").int(inputs.keys.length);
//     hwe.output(out.endObject().toString());
//     return 0;
//   }
//
// The module uses Extism's guest ABI, hwe's "native" convention: the inputs
// arrive as one JSON object keyed by dependency step name, the output must
// be one JSON document, and a step fails with `return hwe.fail("why")`.
// The host API (log, progress, HTTP, KV, secrets) goes through hwe's
// hwe_v1_* host functions, each allowed only as far as the step's grant.

import { JSON } from "assemblyscript-json/assembly";
import {
  alloc, error_set, free, input_length, input_load_u64, input_load_u8,
  length, load_u64, load_u8, output_set, store_u64, store_u8,
} from "@extism/as-pdk/lib/env";

@external("extism:host/user", "hwe_v1_log")
declare function hwe_v1_log(request: u64): u64;
@external("extism:host/user", "hwe_v1_progress")
declare function hwe_v1_progress(request: u64): u64;
@external("extism:host/user", "hwe_v1_http_fetch")
declare function hwe_v1_http_fetch(request: u64): u64;
@external("extism:host/user", "hwe_v1_kv_get")
declare function hwe_v1_kv_get(request: u64): u64;
@external("extism:host/user", "hwe_v1_kv_put")
declare function hwe_v1_kv_put(request: u64): u64;
@external("extism:host/user", "hwe_v1_secret")
declare function hwe_v1_secret(request: u64): u64;

// ---- moving bytes to and from Extism's kernel --------------------------
// Guest and kernel memories are separate. Copies move 8 bytes per call
// (load_u64/store_u64); byte-wide calls only for the last 0..7 bytes,
// because every call crosses into the host.

function readInputBytes(): Uint8Array {
  const n = input_length();
  const buf = new Uint8Array(<i32>n);
  const ptr = buf.dataStart;
  let i: u64 = 0;
  for (; i + 8 <= n; i += 8) store<u64>(ptr + <usize>i, input_load_u64(i));
  for (; i < n; i++) store<u8>(ptr + <usize>i, input_load_u8(i));
  return buf;
}

function toKernel(b: Uint8Array): u64 {
  const n = <u64>b.length;
  const offset = alloc(n);
  const ptr = b.dataStart;
  let i: u64 = 0;
  for (; i + 8 <= n; i += 8) store_u64(offset + i, load<u64>(ptr + <usize>i));
  for (; i < n; i++) store_u8(offset + i, load<u8>(ptr + <usize>i));
  return offset;
}

function fromKernel(offset: u64): Uint8Array {
  const n = length(offset);
  const buf = new Uint8Array(<i32>n);
  const ptr = buf.dataStart;
  let i: u64 = 0;
  for (; i + 8 <= n; i += 8) store<u64>(ptr + <usize>i, load_u64(offset + i));
  for (; i < n; i++) store<u8>(ptr + <usize>i, load_u8(offset + i));
  return buf;
}

function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

// ---- the step: input, output, failure ----------------------------------

/** The step's inputs as hwe sent them: one JSON object, as UTF-8 bytes. */
export function inputBytes(): Uint8Array {
  return readInputBytes();
}

/** The step's inputs: each direct dependency's output by step name. */
export function inputs(): JSON.Obj {
  const v = JSON.parse(readInputBytes());
  return v.isObj ? <JSON.Obj>v : new JSON.Obj();
}

/** Sets the step's output, which must be one JSON document. */
export function output(json: string): void {
  const b = utf8(json);
  output_set(toKernel(b), <u64>b.length);
}

/** Sets the message the step fails with; returns 1 for `return hwe.fail(...)`. */
export function fail(message: string): i32 {
  error_set(toKernel(utf8(message)));
  return 1;
}

/**
 * Replaces AssemblyScript's abort (an assertion, a null dereference, an
 * index out of range) so the step fails with where it happened instead of
 * importing env.abort, which hwe does not provide. Wired in by asconfig's
 * "use": ["abort=assembly/index/abort"]. The module then traps.
 */
export function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const msg = message !== null ? <string>message : "(no message)";
  const file = fileName !== null ? <string>fileName : "?";
  fail("abort: " + msg + " at " + file + ":" + line.toString() + ":" + column.toString());
  unreachable();
}

// ---- the host API -------------------------------------------------------

/** The answer of a host call. */
export class HostResult {
  /** The "value" member of the response, when the call succeeded. */
  value: JSON.Value | null = null;
  /** For kvGet: whether the key exists. */
  found: bool = false;
  /** The error message when the call failed, else "". */
  error: string = "";
  /** Set ("kv", "secrets", "net", ...) when the step's grant refused the call. */
  capability: string = "";
  /** Value and body bytes are base64 when this is "base64". */
  encoding: string = "";

  get ok(): bool { return this.error.length == 0; }
  get denied(): bool { return this.capability.length > 0; }

  /** The value as a string ("" when absent or not a string). */
  get text(): string {
    const v = this.value;
    if (v !== null && v.isString) return (<JSON.Str>v).valueOf();
    return "";
  }
}

function hostCall(fn: (request: u64) => u64, name: string, request: string): HostResult {
  const result = new HostResult();
  const offset = fn(toKernel(utf8(request)));
  if (offset == 0) {
    result.error = name + ": the host could not return a response (out of memory?)";
    return result;
  }
  const raw = fromKernel(offset);
  free(offset);
  const parsed = JSON.parse(raw);
  if (!parsed.isObj) {
    result.error = name + ": bad response";
    return result;
  }
  const obj = <JSON.Obj>parsed;
  const err = obj.getObj("error");
  if (err !== null) {
    const msg = err.getString("message");
    const cap = err.getString("capability");
    result.error = msg !== null ? msg.valueOf() : name + " failed";
    if (cap !== null) result.capability = cap.valueOf();
    return result;
  }
  result.value = obj.get("value");
  const found = obj.getBool("found");
  if (found !== null) result.found = found.valueOf();
  const encoding = obj.getString("encoding");
  if (encoding !== null) result.encoding = encoding.valueOf();
  return result;
}

/** Writes a line to the step's log. */
export function log(line: string): void {
  hostCall(hwe_v1_log, "hwe_v1_log", "{\"line\":" + quote(line) + "}");
}

/** Reports how far the step is (0 to 1) with a message. */
export function progress(fraction: f64, message: string): HostResult {
  return hostCall(hwe_v1_progress, "hwe_v1_progress",
    "{\"fraction\":" + number(fraction) + ",\"message\":" + quote(message) + "}");
}

/** Reads a key from the workflow's KV store: check ok, found, text. */
export function kvGet(key: string): HostResult {
  return hostCall(hwe_v1_kv_get, "hwe_v1_kv_get", "{\"key\":" + quote(key) + "}");
}

/** Writes a key (text) in the workflow's KV store. */
export function kvPut(key: string, value: string): HostResult {
  return hostCall(hwe_v1_kv_put, "hwe_v1_kv_put",
    "{\"key\":" + quote(key) + ",\"value\":" + quote(value) + "}");
}

/** Reads a secret the step was granted: check ok, then text. */
export function secret(name: string): HostResult {
  return hostCall(hwe_v1_secret, "hwe_v1_secret", "{\"name\":" + quote(name) + "}");
}

/**
 * Performs an HTTP request through hwe, allowed only to the step's granted
 * hosts. The value is {"status", "headers", "body"} (body as text, or
 * base64 when the value's "encoding" is "base64").
 */
export function httpFetch(method: string, url: string, body: string = ""): HostResult {
  return hostCall(hwe_v1_http_fetch, "hwe_v1_http_fetch",
    "{\"method\":" + quote(method) + ",\"url\":" + quote(url) + ",\"body\":" + quote(body) + "}");
}

// ---- writing JSON ------------------------------------------------------

/** Quotes s as a JSON string. */
export function quote(s: string): string {
  let out = "\"";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    out += s.substring(start, i);
    if (c == 0x22) out += "\\\"";
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
    start = i + 1;
  }
  return out + s.substring(start) + "\"";
}

/** Formats a number as JSON: integers without a fraction, NaN and ±Inf as null. */
export function number(x: f64): string {
  if (!isFinite(x)) return "null";
  if (x == Math.floor(x) && Math.abs(x) < 9007199254740992) return (<i64>x).toString();
  return x.toString();
}

/**
 * Writer builds a JSON document: beginObject/key/value.../endObject,
 * beginArray/value.../endArray. Commas are handled for you.
 */
export class Writer {
  private buf: string[] = [];
  private needComma: bool[] = [false];

  private sep(): void {
    const top = this.needComma.length - 1;
    if (this.needComma[top]) this.buf.push(",");
    this.needComma[top] = true;
  }

  beginObject(): Writer { this.sep(); this.buf.push("{"); this.needComma.push(false); return this; }
  endObject(): Writer { this.needComma.pop(); this.buf.push("}"); return this; }
  beginArray(): Writer { this.sep(); this.buf.push("["); this.needComma.push(false); return this; }
  endArray(): Writer { this.needComma.pop(); this.buf.push("]"); return this; }

  /** Writes an object key; the next value belongs to it. */
  key(k: string): Writer {
    this.sep();
    this.buf.push(quote(k) + ":");
    this.needComma[this.needComma.length - 1] = false;
    return this;
  }

  string(s: string): Writer { this.sep(); this.buf.push(quote(s)); this.endValue(); return this; }
  float(x: f64): Writer { this.sep(); this.buf.push(number(x)); this.endValue(); return this; }
  int(x: i64): Writer { this.sep(); this.buf.push(x.toString()); this.endValue(); return this; }
  bool(b: bool): Writer { this.sep(); this.buf.push(b ? "true" : "false"); this.endValue(); return this; }
  null(): Writer { this.sep(); this.buf.push("null"); this.endValue(); return this; }
  /** Writes a value that is already JSON text. */
  raw(json: string): Writer { this.sep(); this.buf.push(json); this.endValue(); return this; }

  // After a key's value the enclosing object needs a comma before the next key.
  private endValue(): void { this.needComma[this.needComma.length - 1] = true; }

  toString(): string { return this.buf.join(""); }
}
