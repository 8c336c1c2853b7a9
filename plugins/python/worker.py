# hwe python worker: runs steps sent by the host, one at a time, each in
# fresh globals. Protocol (see plugins/internal/warm): requests arrive as JSON
# lines on fd 3, replies leave as JSON lines on fd 4; fd 1 and fd 2 belong to
# the steps. While a step runs, its host API calls (the hwe module) go out on
# fd 4 and their answers come back on fd 3. Started with -I, so PYTHON*
# variables and user site-packages play no part; argv[1] is the source of
# the hwe module (guest-sdks/python/hwe.py).
#
# Two rules keep one step from disturbing the next. Only the worker process
# itself speaks the protocol: a copy made by os.fork() in a step never
# writes to the pipes (its copies of them are pointed at /dev/null, and it
# ends with os._exit when run() returns in it). And no process a step
# started outlives the step: before replying, the worker kills every
# process it has left. Under the sandbox the worker is PID 1 of its own PID
# namespace, so that is kill(-1, SIGKILL) and reaping; without it the worker
# makes itself a child subreaper (orphans come back to it instead of going
# to the system's init, setsid or not) and kills its children until none
# is left. Without ctypes (to make it a subreaper) a process that left the
# worker's process group and lost its parent escapes that. If something
# cannot be ended, the worker asks the host to retire it.
import builtins
import itertools
import json
import os
import signal
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

# The worker process: only it speaks the protocol.
_worker_pid = os.getpid()

# What the clean-up after a step uses, bound now: a step that replaces
# os.kill or time.sleep in the shared modules does not change it.
_getpid, _kill_pid, _waitpid, _listdir = os.getpid, os.kill, os.waitpid, os.listdir
_monotonic, _sleep = time.monotonic, time.sleep


def _forked_child():
    """In a copy of the worker made by os.fork(): point its copies of the
    protocol pipes at /dev/null, so nothing it does reaches the host."""
    try:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return  # the pid checks below still keep it quiet
    for stream in (_requests, _replies):
        try:
            os.dup2(null, stream.fileno(), inheritable=False)
        except (OSError, ValueError):
            pass
    os.close(null)


os.register_at_fork(after_in_child=_forked_child)


def _end_forked_copy(exc=None):
    """End a copy of the worker made by os.fork() in a step, once run()
    returned or raised in it, the way a forked Python program ends (exit
    status, traceback on stderr), without touching the protocol."""
    code = 0
    if isinstance(exc, SystemExit):
        if isinstance(exc.code, int):
            code = exc.code & 0xFF
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            code = 1
    elif exc is not None:
        try:
            traceback.print_exception(type(exc), exc, exc.__traceback__)
        except BaseException:  # noqa: B036
            pass
        code = 1
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: B036
            pass
    os._exit(code)


# Without a PID namespace of its own, the worker becomes a child subreaper,
# so that every process a step leaves behind ends up its child.
_subreaper = False
if _worker_pid != 1:
    try:
        import ctypes

        _subreaper = ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except Exception:  # noqa: BLE001 - no ctypes, no prctl: fall back to the process group
        pass

for _stream in (sys.stdout, sys.stderr):
    # Line buffering: a step's prints reach its log as they happen.
    _stream.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)

_base_path = list(sys.path)
_idle_dir = os.getcwd()
_hwe_code = compile(sys.argv[1] if len(sys.argv) > 1 else "", "hwe.py", "exec", dont_inherit=True)
sys.argv[:] = [""]


def _reply(obj):
    if _getpid() != _worker_pid:
        _end_forked_copy()
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
    if _getpid() != _worker_pid:
        return {"error": {"message": "hwe: the host API is not available in a forked process"}}
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
        if _getpid() != _worker_pid:
            _end_forked_copy()
        dump = json.dumps(result)
        too_big = _output_size(result, dump, req.get("max_output") or 0)
        if too_big:
            return {"ok": False, "limit": "output", "size": too_big, "message": "output limit exceeded", "line": 0}
        return {"ok": True, "dump": dump}
    except BaseException as exc:  # noqa: B036 - SystemExit fails the step, not the worker
        if _getpid() != _worker_pid:
            _end_forked_copy(exc)
        return _error_reply(exc, filename, run_func)


def _output_size(result, dump, limit):
    """The output's size in bytes if it is over limit (0 = no limit), else
    0. The host's output is compact UTF-8 JSON, which may be smaller than
    the dump; a dump more than six times the limit cannot fit anyway."""
    if not limit or len(dump) <= limit:
        return 0
    if len(dump) > 6 * limit:
        return len(dump)
    compact = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
    size = len(compact.encode("utf-8", "surrogatepass"))
    return size if size > limit else 0


def _reap():
    """Reap every child that has ended. True when the worker has no child
    left at all."""
    while True:
        try:
            pid, _ = _waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        except InterruptedError:
            continue
        if pid == 0:
            return False


def _children():
    """The worker's child processes."""
    pids = set()
    try:
        for tid in _listdir("/proc/self/task"):
            with open("/proc/self/task/%s/children" % tid) as f:
                pids.update(int(p) for p in f.read().split())
        return pids
    except OSError:
        pass
    return {pid for pid, ppid, _ in _proc_table() if ppid == _worker_pid}


def _proc_table():
    """(pid, ppid, pgrp) of every process /proc shows."""
    table = []
    for name in _listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) >= 3 and fields[0] != b"Z":
            table.append((int(name), int(fields[1]), int(fields[2])))
    return table


def _kill(pid):
    try:
        _kill_pid(pid, signal.SIGKILL)
    except OSError:
        pass


def _end_processes():
    """Kill every process the step left behind and reap it. Returns None
    when none is left, else why the worker should not serve another step."""
    if _reap() and (_worker_pid == 1 or _subreaper):
        return None  # no child at all, so (PID 1 or subreaper) no descendant either
    deadline = _monotonic() + 2
    while True:
        if _worker_pid == 1:
            # Every other process of the PID namespace, zombies included.
            try:
                _kill_pid(-1, signal.SIGKILL)
            except OSError:
                pass
        else:
            # Children only: their pids stay theirs until they are reaped,
            # so no other process is hit. As a subreaper the worker adopts
            # their orphans, which the next round kills.
            others = _children()
            if not _subreaper and os.getpgrp() == _worker_pid:
                others |= {pid for pid, _, pgrp in _proc_table() if pgrp == _worker_pid and pid != _worker_pid}
            for pid in others:
                _kill(pid)
        if _reap() and (_worker_pid == 1 or _subreaper or not others):
            break
        if _monotonic() > deadline:
            return "processes the step started could not be ended"
        _sleep(0.002)
    # Popen objects of ended processes must not wait for their pids again
    # (a later process may have one of them).
    subprocess = sys.modules.get("subprocess")
    if isinstance(getattr(subprocess, "_active", None), list):
        subprocess._active.clear()
    return None


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
        if _getpid() != _worker_pid:
            _end_forked_copy()
        _end_host_calls()
        leftover = _end_processes()
        _finish_streams(req["sentinel"])
        sys.path[:] = _base_path
        sys.argv[:] = [""]
        try:
            os.chdir(_idle_dir)
        except OSError:
            pass
        if leftover:
            _reply({"retire": leftover})
        _reply(reply)


_serve()
