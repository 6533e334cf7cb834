"""Skiff's Python runner: runs one function's handler in a container, call after call.

Mounted into the container read-only (never baked into an image) and started by the worker as
`python3 -u skiff_runner.py HANDLER [CODE_DIR]`, HANDLER being `module:function`. Standard
library only.

The channel to the worker is the process's own stdin and stdout, which works inside gVisor with
no network. Before anything else the runner keeps stdout for itself and points file descriptor 1
(and sys.stdout) at stderr: whatever the handler prints, from Python or from C, goes to the log
stream and never into a result.

Frames both ways: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
  runner -> worker, once:  {"ready": true, "pid": N} after importing the handler, or
                           {"ready": false, "error": ERROR} if it cannot be imported (then exit 3)
  worker -> runner:        {"id": ID, "args": [...], "kwargs": {...}}
  runner -> worker:        {"id": ID, "ok": true, "output": VALUE}
                           {"id": ID, "ok": false, "error": ERROR}
  ERROR = {"type": "ValueError", "message": "...", "traceback": "..."}
End of stdin ends the runner (exit 0).
"""

import importlib
import json
import os
import struct
import sys
import traceback


def _channel():
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return sys.stdin.buffer, out


def _read_exact(stream, n):
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _receive(stream):
    head = _read_exact(stream, 4)
    if head is None:
        return None
    (length,) = struct.unpack(">I", head)
    body = _read_exact(stream, length)
    if body is None:
        raise EOFError("the channel ended inside a frame")
    return json.loads(body.decode("utf-8"))


def _send(stream, message):
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    stream.write(struct.pack(">I", len(body)) + body)


def _error(exc):
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def _load(handler, code_dir):
    if code_dir:
        sys.path.insert(0, code_dir)
    module_name, _, function_name = handler.partition(":")
    if not module_name or not function_name:
        raise ValueError("handler must be module:function, got %r" % handler)
    module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise AttributeError("%s has no function %r" % (module_name, function_name))
    return function


def main(argv):
    inbox, outbox = _channel()
    try:
        function = _load(argv[1], argv[2] if len(argv) > 2 else None)
    except BaseException as exc:  # the import runs user code: anything may come out of it
        _send(outbox, {"ready": False, "error": _error(exc)})
        return 3
    sys.stderr.flush()
    _send(outbox, {"ready": True, "pid": os.getpid()})
    while True:
        request = _receive(inbox)
        if request is None:
            return 0
        try:
            result = function(*request.get("args", []), **request.get("kwargs", {}))
        except BaseException as exc:  # the handler's failure, whatever it is, is the call's
            reply = {"id": request["id"], "ok": False, "error": _error(exc)}
        else:
            reply = {"id": request["id"], "ok": True, "output": result}
            try:
                json.dumps(result)
            except (TypeError, ValueError) as exc:
                error = _error(exc)
                error["message"] = "the handler's result is not JSON: " + str(exc)
                reply = {"id": request["id"], "ok": False, "error": error}
        sys.stderr.flush()
        _send(outbox, reply)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
