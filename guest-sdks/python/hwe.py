"""hwe: the host API for Python steps.

Inside a step, ``import hwe`` gives the functions through which step code
reaches the outside world. hwe checks every call against the step's grant
(``allow = { net = {...}, secrets = {...}, kv = true }`` in the workflow)::

    import hwe

    def run():
        hwe.log("starting")                  # a line in the step's log
        hwe.progress(0.5, "halfway")         # 0..1, with an optional message
        hwe.kv_put("last_run", "today")      # str or bytes
        hwe.kv_get("last_run")               # -> "today"; None if missing
        token = hwe.secret("API_TOKEN")      # -> str
        r = hwe.http_fetch("https://api.example.com/items", method="POST",
                           headers={"Authorization": "Bearer " + token},
                           body='{"name": "x"}')
        return {"status": r["status"], "body": r["body"]}

A call the grant does not allow raises ``hwe.DeniedError`` (a
PermissionError) whose message names the capability ("capability secrets
denied: ..."); uncaught, it fails the step with that message. Any other
failure raises ``hwe.HostError``. Values that are not UTF-8 text (a KV value,
an HTTP body) come back as ``bytes``, everything else as ``str``.

The calls are synchronous and may be made from any thread while the step
runs. The hwe worker that runs the step provides the connection to the host
(``_transport``); outside a step every call raises HostError.

This file is the module itself: the Python runner embeds it (see embed.go).
"""

import base64 as _base64

__all__ = [
    "log", "progress", "kv_get", "kv_put", "secret", "http_fetch",
    "DeniedError", "HostError",
]


class HostError(RuntimeError):
    """A host API call that failed for a reason other than the grant."""


class DeniedError(PermissionError):
    """A host API call the step's grant does not allow.

    ``capability`` names what was missing: "net", "secrets", "kv", ...
    """

    def __init__(self, message, capability=""):
        super().__init__(message)
        self.capability = capability


# Set by the worker for the step that runs: a function (op, args) -> answer
# dict, with the shapes of the WASM host functions (guest-sdks/README.md).
_transport = None


def _call(op, args):
    transport = _transport
    if transport is None:
        raise HostError("hwe: the host API is only available while an hwe step runs")
    answer = transport(op, args)
    error = answer.get("error")
    if error is not None:
        message = error.get("message") or "host call %s failed" % op
        if error.get("capability"):
            raise DeniedError(message, error["capability"])
        raise HostError(message)
    return answer


def _encode(data, what):
    """Text or bytes to (string, encoding) for the wire."""
    if isinstance(data, str):
        return data, None
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        try:
            return data.decode("utf-8"), None
        except UnicodeDecodeError:
            return _base64.b64encode(data).decode("ascii"), "base64"
    raise TypeError("%s must be str or bytes, not %s" % (what, type(data).__name__))


def _decode(text, encoding):
    if encoding == "base64":
        return _base64.b64decode(text)
    return text


def log(msg):
    """Write msg (any value, as str() shows it) to the step's log."""
    _call("log", {"line": str(msg)})


def progress(fraction, msg=""):
    """Report how far the step is: fraction from 0 to 1, and a message."""
    _call("progress", {"fraction": float(fraction), "message": str(msg)})


def kv_get(key):
    """The value stored under key for this workflow, or None if there is none."""
    answer = _call("kv_get", {"key": str(key)})
    if not answer.get("found"):
        return None
    return _decode(answer.get("value") or "", answer.get("encoding"))


def kv_put(key, value):
    """Store value (str or bytes) under key for this workflow."""
    text, encoding = _encode(value, "value")
    args = {"key": str(key), "value": text}
    if encoding:
        args["encoding"] = encoding
    _call("kv_put", args)


def secret(name):
    """The secret called name, if the step was granted it."""
    return _call("secret", {"name": str(name)})["value"]


def http_fetch(url, method="GET", headers=None, body=None):
    """Make an HTTP request the step's net grant allows.

    Returns {"status": int, "headers": {name: value}, "body": str or bytes}.
    """
    args = {"url": str(url), "method": str(method)}
    if headers:
        args["headers"] = {str(k): str(v) for k, v in dict(headers).items()}
    if body is not None:
        text, encoding = _encode(body, "body")
        args["body"] = text
        if encoding:
            args["encoding"] = encoding
    value = _call("http_fetch", args)["value"]
    return {
        "status": value["status"],
        "headers": value.get("headers") or {},
        "body": _decode(value.get("body") or "", value.get("encoding")),
    }
