# hwe python worker: runs steps sent by the host, one at a time, each in
# fresh globals. Protocol (see plugins/internal/warm): requests arrive as JSON
# lines on fd 3, replies leave as JSON lines on fd 4; fd 1 and fd 2 belong to
# the steps. While a step runs, its host API calls (the hwe module) go out on
# fd 4 and their answers come back on fd 3. Started with -I, so PYTHON*
# variables and user site-packages play no part; argv[1] is the source of
# the hwe module (guest-sdks/python/hwe.py).
import builtins
import itertools
import json
import os
import sys
import threading
import traceback
from importlib.machinery import ModuleSpec

# Modules the reference examples import, loaded once per worker so steps
# importing them pay nothing.
import random, re, time  # noqa: E401,F401

# Move the protocol pipes off fd 3/4 onto descriptors that programs the step
# starts do not inherit (os.dup makes non-inheritable descriptors).
_requests = os.fdopen(os.dup(3), "rb")
_replies = os.fdopen(os.dup(4), "wb")
os.close(3)
os.close(4)

for _stream in (sys.stdout, sys.stderr):
    # Line buffering: a step's prints reach its log as they happen.
    _stream.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)

_base_path = list(sys.path)
_idle_dir = os.getcwd()
_hwe_code = compile(sys.argv[1] if len(sys.argv) > 1 else "", "hwe.py", "exec", dont_inherit=True)
sys.argv[:] = [""]


def _reply(obj):
    _replies.write(json.dumps(obj).encode() + b"\n")
    _replies.flush()


# Host API calls. One at a time (a lock), from any thread of the step, and
# only while the step runs: the step's end takes the lock and clears the
# token, so a thread the step left behind cannot send a call that would be
# taken for the reply to the next request.
_call_lock = threading.Lock()
_call_ids = itertools.count(1)
_host_token = None


def _host_call(op, args):
    with _call_lock:
        if _host_token is None:
            return {"error": {"message": "hwe: the host API is only available while an hwe step runs"}}
        call_id = next(_call_ids)
        call = {"call": op, "id": call_id, "token": _host_token, "args": args}
        _replies.write(json.dumps(call, separators=(",", ":")).encode() + b"\n")
        _replies.flush()
        while True:
            line = _requests.readline()
            if not line:
                os._exit(0)  # the host is gone
            answer = json.loads(line)
            if answer.get("reply_to") == call_id:
                return answer


class _HweImporter:
    """Makes `import hwe` give the step a fresh module connected to the
    host, built on first import (a step that does not import it pays
    nothing); no step sees another's changes to it."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "hwe":
            return None
        return ModuleSpec("hwe", cls, origin="hwe.py")

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        exec(_hwe_code, module.__dict__)
        module._transport = _host_call


sys.meta_path.insert(0, _HweImporter)


def _end_host_calls():
    """Disconnect the step's hwe module: calls made later (by a thread the
    step left behind) fail instead of acting for the next step."""
    global _host_token
    with _call_lock:
        _host_token = None
    module = sys.modules.pop("hwe", None)
    if module is not None:
        module._transport = None


def _error_reply(exc, filename, run_func):
    """Describe exc the way the reference does ("ZeroDivisionError: division
    by zero") plus the workflow-file line it happened at."""
    name = type(exc).__qualname__
    line = 0
    trace_tb = None
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        message = "%s: %s" % (name, exc.msg)
        line = exc.lineno or 0
        trace = "".join(traceback.format_exception_only(type(exc), exc))
    else:
        try:
            text = str(exc)
        except Exception:
            text = "<exception str() failed>"
        message = "%s: %s" % (name, text)
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == filename:
                if trace_tb is None:
                    trace_tb = tb
                line = tb.tb_lineno  # the last frame in step code wins
            tb = tb.tb_next
        if line == 0 and run_func is not None:
            # Raised by the call itself (wrong number of arguments): point
            # at the def.
            code = getattr(run_func, "__code__", None)
            if code is not None and code.co_filename == filename:
                line = code.co_firstlineno
        trace = "".join(traceback.format_exception(type(exc), exc, trace_tb))
    return {"ok": False, "message": message, "line": line, "trace": trace}


def _run_step(req):
    step = req["step"]
    filename = req["filename"]
    offset = req.get("line", 0)
    inputs = req["inputs"] if req["has_inputs"] else {}
    scope = {"__name__": "__main__", "__builtins__": builtins, "inputs": inputs}
    run_func = None
    try:
        # Blank lines in front make line numbers those of the workflow file.
        source = "\n" * (offset - 1) + req["code"] if offset > 1 else req["code"]
        code = compile(source, filename, "exec", dont_inherit=True)
        # One dict as globals and locals: top-level imports and helpers are
        # visible inside run() (the reference hides them).
        exec(code, scope)
        if "run" not in scope:
            return {"ok": False, "message": "No 'run' function found in step %s" % step, "line": 0}
        run_func = scope["run"]
        if not callable(run_func):
            return {"ok": False, "message": "'run' is not callable in step %s" % step, "line": 0}
        result = run_func(inputs) if req["has_inputs"] else run_func()
        return {"ok": True, "dump": json.dumps(result)}
    except BaseException as exc:  # noqa: B036 - SystemExit fails the step, not the worker
        return _error_reply(exc, filename, run_func)


def _check(req):
    """Compile a step without running it (hwe validate)."""
    filename = req["filename"]
    offset = req.get("line", 0)
    try:
        source = "\n" * (offset - 1) + req["code"] if offset > 1 else req["code"]
        compile(source, filename, "exec", dont_inherit=True)
        return {"ok": True}
    except BaseException as exc:  # noqa: B036
        return _error_reply(exc, filename, None)


def _finish_streams(sentinel):
    # A step may have replaced or wrapped sys.stdout/sys.stderr.
    for current, original in ((sys.stdout, sys.__stdout__), (sys.stderr, sys.__stderr__)):
        try:
            current.flush()
        except Exception:
            pass
        try:
            original.flush()
        except Exception:
            pass
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    mark = (sentinel + "\n").encode()
    os.write(1, mark)
    os.write(2, mark)


def _serve():
    global _host_token
    _reply({"ready": True, "version": sys.version.split()[0]})
    while True:
        line = _requests.readline()
        if not line:
            return
        req = json.loads(line)
        if "reply_to" in req:
            continue  # an answer to a call nobody waits for any more
        if req.get("op") == "check":
            reply = _check(req)
            _finish_streams(req["sentinel"])
            _reply(reply)
            continue
        try:
            os.chdir(req["cwd"])
            os.environ.clear()
            os.environ.update(req["env"])
            _host_token = req.get("host_token")
            reply = _run_step(req)
        except BaseException as exc:  # noqa: B036
            reply = {"ok": False, "message": "step setup failed: %s: %s" % (type(exc).__name__, exc), "line": 0}
        finally:
            _end_host_calls()
            _finish_streams(req["sentinel"])
            sys.path[:] = _base_path
            sys.argv[:] = [""]
            try:
                os.chdir(_idle_dir)
            except OSError:
                pass
        _reply(reply)


_serve()
