// The REST API client: bearer token from localStorage, JSON errors as
// exceptions, and server-sent events read through fetch (EventSource cannot
// send an Authorization header).

const TOKEN_KEY = "hwe.token";

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const t = getToken();
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}

// APIError carries the server's {"error": {"code", "message", "problems"?}}.
export class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || "request failed with status " + status);
    this.status = status;
    this.code = e.code || "http_" + status;
    this.problems = e.problems || [];
  }
}

// onUnauthorized is called when a request answers 401 (the app shows the login).
export let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

export async function request(method, path, body, contentType) {
  const opts = { method, headers: headers() };
  if (body !== undefined) {
    opts.body = typeof body === "string" ? body : JSON.stringify(body);
    opts.headers["Content-Type"] = contentType || (typeof body === "string" ? "text/plain" : "application/json");
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (err) {
    throw new APIError(0, { error: { code: "network", message: "cannot reach the server: " + err.message } });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    throw new APIError(res.status, data);
  }
  return data;
}

export const api = {
  me: () => request("GET", "/api/v1/me"),
  workflows: () => request("GET", "/api/v1/workflows"),
  workflow: (name) => request("GET", "/api/v1/workflows/" + encodeURIComponent(name)),
  putWorkflow: (name, source) => request("PUT", "/api/v1/workflows/" + encodeURIComponent(name), source),
  deleteWorkflow: (name) => request("DELETE", "/api/v1/workflows/" + encodeURIComponent(name)),
  versions: (name) => request("GET", "/api/v1/workflows/" + encodeURIComponent(name) + "/versions"),
  version: (name, v) => request("GET", "/api/v1/workflows/" + encodeURIComponent(name) + "/versions/" + v),
  validate: (name, source) => request("POST", "/api/v1/validate?name=" + encodeURIComponent(name || "workflow"), source),
  startRun: (name, input) =>
    request("POST", "/api/v1/workflows/" + encodeURIComponent(name) + "/runs", input === undefined ? undefined : { input }),
  runs: (params) => request("GET", "/api/v1/runs?" + new URLSearchParams(params).toString()),
  run: (id) => request("GET", "/api/v1/runs/" + encodeURIComponent(id)),
  cancel: (id) => request("POST", "/api/v1/runs/" + encodeURIComponent(id) + "/cancel"),
  retry: (id) => request("POST", "/api/v1/runs/" + encodeURIComponent(id) + "/retry"),
};

// parseSSE splits a text buffer into complete server-sent events and
// returns them with the unparsed rest.
export function parseSSE(buffer) {
  const events = [];
  let i;
  while ((i = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, i);
    buffer = buffer.slice(i + 2);
    const ev = { id: "", event: "message", data: "" };
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const c = line.indexOf(":");
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? "" : line.slice(c + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") ev.id = value;
      else if (field === "event") ev.event = value;
      else if (field === "data") ev.data = ev.data ? ev.data + "\n" + value : value;
    }
    if (ev.data || ev.event !== "message") events.push(ev);
  }
  return { events, rest: buffer };
}

// streamEvents follows a run's events until the stream sends `end` or
// stop() is called, reconnecting (from the last id) if the connection drops.
export function streamEvents(runID, onEvent) {
  const ctrl = new AbortController();
  let lastID = "";
  let ended = false;
  (async () => {
    let delay = 500;
    while (!ended && !ctrl.signal.aborted) {
      try {
        const h = headers();
        if (lastID) h["Last-Event-ID"] = lastID;
        const res = await fetch("/api/v1/runs/" + encodeURIComponent(runID) + "/events", { headers: h, signal: ctrl.signal });
        if (!res.ok) {
          if (res.status === 401) onUnauthorized();
          onEvent({ event: "error", data: { status: res.status } });
          return;
        }
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          const parsed = parseSSE(buf);
          buf = parsed.rest;
          for (const ev of parsed.events) {
            if (ev.id) lastID = ev.id;
            let data = null;
            try {
              data = ev.data ? JSON.parse(ev.data) : null;
            } catch {
              data = ev.data;
            }
            if (ev.event === "end") ended = true;
            onEvent({ id: ev.id, event: ev.event, data });
          }
        }
      } catch (err) {
        if (ctrl.signal.aborted) return;
      }
      if (!ended) {
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  })();
  return { stop: () => ctrl.abort() };
}
