// hwe: the host API for JavaScript steps.
//
// Inside a step, require('hwe') gives the functions through which step code
// reaches the outside world. hwe checks every call against the step's grant
// (allow = { net = {...}, secrets = {...}, kv = true } in the workflow).
// Every function returns a Promise, so use them from an async run:
//
//   const hwe = require('hwe');
//
//   async function run() {
//     await hwe.log('starting');                 // a line in the step's log
//     await hwe.progress(0.5, 'halfway');        // 0..1, optional message
//     await hwe.kv_put('last_run', 'today');     // string or Buffer
//     await hwe.kv_get('last_run');              // 'today'; null if missing
//     const token = await hwe.secret('API_TOKEN');
//     const r = await hwe.http_fetch('https://api.example.com/items', {
//       method: 'POST', headers: { Authorization: 'Bearer ' + token }, body: '{}',
//     });
//     return { status: r.status, body: r.body };  // r.headers too
//   }
//
// A call the grant does not allow rejects with hwe.DeniedError, whose
// message names the capability ('capability secrets denied: ...') and whose
// .capability is 'net', 'secrets', 'kv', ...; uncaught, it fails the step
// with that message. Any other failure rejects with hwe.HostError. Values
// that are not UTF-8 text (a KV value, an HTTP body) come back as Buffers,
// everything else as strings. log and progress calls reach the log in the
// order they were made, awaited or not.
//
// The hwe worker that runs the step connects the module to the host
// (_connect); outside a step every call rejects with HostError.
//
// This file is the module itself: the JavaScript runner embeds it (see
// embed.go).
'use strict';

class HostError extends Error {
  constructor(message) {
    super(message);
    this.name = 'HostError';
  }
}

class DeniedError extends Error {
  constructor(message, capability) {
    super(message);
    this.name = 'DeniedError';
    this.capability = capability || '';
  }
}

// transport(op, args) -> Promise of the answer object, with the shapes of
// the WASM host functions (guest-sdks/README.md). Set by the worker.
let transport = null;

async function call(op, args) {
  if (transport === null) {
    throw new HostError('hwe: the host API is only available while an hwe step runs');
  }
  const answer = await transport(op, args);
  if (answer.error) {
    const message = answer.error.message || 'host call ' + op + ' failed';
    if (answer.error.capability) throw new DeniedError(message, answer.error.capability);
    throw new HostError(message);
  }
  return answer;
}

// encode turns a string or bytes into [text, encoding] for the wire.
function encode(data, what) {
  if (typeof data === 'string') return [data, undefined];
  if (data instanceof ArrayBuffer) data = new Uint8Array(data);
  if (ArrayBuffer.isView(data)) {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const text = buf.toString('utf8');
    if (Buffer.from(text, 'utf8').equals(buf)) return [text, undefined];
    return [buf.toString('base64'), 'base64'];
  }
  throw new TypeError(what + ' must be a string or a Buffer, not ' + typeof data);
}

function decode(text, encoding) {
  return encoding === 'base64' ? Buffer.from(text, 'base64') : text;
}

async function log(msg) {
  await call('log', { line: String(msg) });
}

async function progress(fraction, msg = '') {
  await call('progress', { fraction: Number(fraction), message: String(msg) });
}

async function kv_get(key) {
  const answer = await call('kv_get', { key: String(key) });
  if (!answer.found) return null;
  return decode(answer.value || '', answer.encoding);
}

async function kv_put(key, value) {
  const [text, encoding] = encode(value, 'value');
  const args = { key: String(key), value: text };
  if (encoding) args.encoding = encoding;
  await call('kv_put', args);
}

async function secret(name) {
  return (await call('secret', { name: String(name) })).value;
}

// http_fetch(url, { method, headers, body }) -> { status, headers, body }.
async function http_fetch(url, options = {}) {
  const args = { url: String(url), method: String(options.method || 'GET') };
  if (options.headers) {
    args.headers = {};
    for (const [k, v] of Object.entries(options.headers)) args.headers[k] = String(v);
  }
  if (options.body !== undefined && options.body !== null) {
    const [text, encoding] = encode(options.body, 'body');
    args.body = text;
    if (encoding) args.encoding = encoding;
  }
  const value = (await call('http_fetch', args)).value;
  return { status: value.status, headers: value.headers || {}, body: decode(value.body || '', value.encoding) };
}

module.exports = { log, progress, kv_get, kv_put, secret, http_fetch, DeniedError, HostError };

// _connect is for the worker, not for steps: it sets the transport.
Object.defineProperty(module.exports, '_connect', {
  value: (fn) => { transport = fn; },
  enumerable: false,
});
