"""Skiff's Python runner: runs one function's handler in a container, call after call.

Mounted into the container read-only (never baked into an image) and started by the worker as
`python3 -u skiff_runner.py HANDLER CODE_DIR CONCURRENCY`, HANDLER being `module:function`,
CODE_DIR the directory of the function's code ("-" for none) and CONCURRENCY how many calls may
run at once (in threads; 1 runs them on the main thread). Standard library only.

The channel to the worker is the process's own stdin and stdout, which works inside gVisor with
no network. Before anything else the runner keeps stdout for itself and points file descriptor 1
(and sys.stdout) at stderr: whatever the handler prints, from Python or from C, goes to the log
stream and never into a result. Lines printed from Python during a call start with
"\\x1e" CALL_ID "\\x1f", so the worker can tag them with their call even when calls overlap.

Frames both ways: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
  runner -> worker, once:  {"ready": true, "pid": N} after importing the handler, or
                           {"ready": false, "error": ERROR} if it cannot be imported (then exit 3)
  worker -> runner:        {"id": ID, "args": [...], "kwargs": {...}}
  runner -> worker:        {"id": ID, "ok": true, "output": VALUE}
                           {"id": ID, "ok": false, "error": ERROR}
                           {"id": ID, "ok": false, "out_of_memory": true, "error": ERROR}
                             (the handler hit the memory limit; the runner then exits)
  ERROR = {"type": "ValueError", "message": "...", "traceback": "..."}
End of stdin ends the runner (exit 0) once the calls running have answered.
"""

import importlib
import io
import json
import os
import struct
import sys
import threading
import traceback

_local = threading.local()
_MAX_RESULT = (2 << 20) - 1024  # what fits in a frame with its envelope
_OUT_OF_MEMORY_EXIT = 137


class _Tagged(io.TextIOBase):
    """sys.stdout and sys.stderr during calls: whole lines, each tagged with its call."""

    def __init__(self, raw):
        self._raw = raw
        self._lock = threading.Lock()

    def writable(self):
        return True

    def write(self, text):
        buffered = getattr(_local, "buf", "") + text
        lines = buffered.split("\n")
        _local.buf = lines.pop()
        if lines:
            self._emit(lines)
        return len(text)

    def flush(self):
        rest = getattr(_local, "buf", "")
        if rest:
            _local.buf = ""
            self._emit([rest])
        else:
            self._raw.flush()

    def _emit(self, lines):
        call = getattr(_local, "call", None)
        prefix = "\x1e%s\x1f" % call if call else ""
        with self._lock:
            self._raw.write("".join(prefix + line + "\n" for line in lines))
            self._raw.flush()


def _channel():
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    tagged = _Tagged(sys.__stderr__)
    sys.stdout = tagged
    sys.stderr = tagged
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


class _Outbox:
    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message):
        body = json.dumps(message, separators=(",", ":")).encode("utf-8")
        frame = memoryview(struct.pack(">I", len(body)) + body)
        with self._lock:
            while frame:  # a pipe may take part of a large frame at a time
                frame = frame[self._stream.write(frame):]


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


def _serve(function, request, outbox):
    _local.call = request["id"]
    out_of_memory = False
    try:
        result = function(*request.get("args", []), **request.get("kwargs", {}))
    except MemoryError:
        # What the handler holds is freed only once this block is left: reply after it.
        out_of_memory = True
    except BaseException as exc:  # the handler's failure, whatever it is, is the call's
        reply = {"id": request["id"], "ok": False, "error": _error(exc)}
    else:
        try:
            size = len(json.dumps(result, separators=(",", ":")).encode("utf-8"))
        except (TypeError, ValueError) as exc:
            error = _error(exc)
            error["message"] = "the handler's result is not JSON: " + str(exc)
            reply = {"id": request["id"], "ok": False, "error": error}
        else:
            if size > _MAX_RESULT:
                reply = {"id": request["id"], "ok": False, "error": {
                    "type": "ResultTooLarge",
                    "message": "the handler's result is %d bytes of JSON, over the %d a call may "
                               "return" % (size, _MAX_RESULT),
                    "traceback": ""}}
            else:
                reply = {"id": request["id"], "ok": True, "output": result}
    finally:
        sys.stdout.flush()
        _local.call = None
    if out_of_memory:
        # The container is replaced: a process that hit its memory limit is not trusted again.
        outbox.send({"id": request["id"], "ok": False, "out_of_memory": True, "error": {
            "type": "MemoryError", "message": "the handler ran out of memory", "traceback": ""}})
        os._exit(_OUT_OF_MEMORY_EXIT)
    outbox.send(reply)


def main(argv):
    inbox, out = _channel()
    outbox = _Outbox(out)
    code_dir = argv[2] if len(argv) > 2 and argv[2] != "-" else None
    concurrency = int(argv[3]) if len(argv) > 3 else 1
    try:
        function = _load(argv[1], code_dir)
    except BaseException as exc:  # the import runs user code: anything may come out of it
        sys.stdout.flush()
        outbox.send({"ready": False, "error": _error(exc)})
        return 3
    sys.stdout.flush()
    outbox.send({"ready": True, "pid": os.getpid()})
    pool = None
    if concurrency > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="skiff-call")
    while True:
        request = _receive(inbox)
        if request is None:
            break
        if pool is None:
            _serve(function, request, outbox)
        else:
            pool.submit(_serve, function, request, outbox)
    if pool is not None:
        pool.shutdown(wait=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
