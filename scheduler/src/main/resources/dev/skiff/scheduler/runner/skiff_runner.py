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
  worker -> runner:        {"id": ID, "args": [...], "kwargs": {...}, "timeout_ms": N}
  runner -> worker:        {"id": ID, "ok": true, "output": VALUE, "us": MICROSECONDS}
                           {"id": ID, "ok": false, "error": ERROR, "us": MICROSECONDS}
                           {"id": ID, "ok": false, "out_of_memory": true, "error": ERROR}
                           {"id": ID, "ok": false, "timed_out": true, "error": ERROR}
                             (the last two end the runner: the container is replaced)
  ERROR = {"type": "ValueError", "message": "...", "traceback": "..."}
Raw bytes, neither JSON nor base64: a call whose one argument is bytes comes as
  {"id": ID, "raw": N, "timeout_ms": N} and a frame of the N bytes (the handler gets bytes), and
a handler that returns bytes (or bytearray, memoryview) answers
  {"id": ID, "ok": true, "raw": N, "us": MICROSECONDS} and a frame of the N bytes.
End of stdin ends the runner (exit 0) once the calls running have answered.

The worker may send calls before earlier ones have answered (it does for short handlers): they
wait in the pipe. The runner reads whatever has arrived at once and, running calls one at a time,
sends the answers together just before it would wait for more, so a stream of short calls costs a
few system calls per batch rather than per call. A call's timeout counts from when it starts here;
a watchdog thread ends the runner when a call runs past it.
"""

import importlib
import io
import json
import os
import struct
import sys
import threading
import time
import traceback

_local = threading.local()
_MAX_RESULT = 64 << 20  # a payload's limit (the worker sends results over 2 MiB as payloads)
_OUT_OF_MEMORY_EXIT = 137
_TIMED_OUT_EXIT = 124


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


class _Inbox:
    """Frames from the worker, read as many at a time as have arrived."""

    def __init__(self, fd):
        self._fd = fd
        self._buf = bytearray()

    def buffered(self):
        """Whether a whole frame is already here (taking it will not wait)."""
        if len(self._buf) < 4:
            return False
        (length,) = struct.unpack_from(">I", self._buf)
        return len(self._buf) >= 4 + length

    def _frame(self, before_wait):
        """The next frame's bytes, or None at the end."""
        while not self.buffered():
            if before_wait is not None:
                before_wait()
            chunk = os.read(self._fd, 1 << 18)
            if not chunk:
                if self._buf:
                    raise EOFError("the channel ended inside a frame")
                return None
            self._buf += chunk
        (length,) = struct.unpack_from(">I", self._buf)
        body = bytes(self._buf[4:4 + length])
        del self._buf[:4 + length]
        return body

    def receive(self, before_wait=None):
        """The next request, or None at the end; calls before_wait() before blocking. A request
        with "raw": N is followed by a frame of N bytes: the call's one argument, as bytes."""
        body = self._frame(before_wait)
        if body is None:
            return None
        request = json.loads(body.decode("utf-8"))
        if "raw" in request:
            raw = self._frame(before_wait)
            if raw is None or len(raw) != request["raw"]:
                raise EOFError("the channel ended before a call's raw bytes")
            request["args"] = [raw]
        return request


class _Outbox:
    """Frames to the worker: sent at once, or held and sent together by flush()."""

    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()
        self._held = []

    def _frame(self, message, raw=None):
        body = json.dumps(message, separators=(",", ":")).encode("utf-8")
        frame = struct.pack(">I", len(body)) + body
        if raw is not None:  # announced by the message's "raw": its length
            frame += struct.pack(">I", len(raw)) + raw
        return frame

    def send(self, message, raw=None):
        frame = self._frame(message, raw)
        with self._lock:
            self._write(b"".join(self._held) + frame)
            self._held = []

    def hold(self, message, raw=None):
        frame = self._frame(message, raw)
        with self._lock:
            self._held.append(frame)

    def flush(self):
        with self._lock:
            if self._held:
                self._write(b"".join(self._held))
                self._held = []

    def _write(self, data):
        view = memoryview(data)
        while view:  # a pipe may take part of a large write at a time
            view = view[self._stream.write(view):]


class _Watchdog:
    """Ends the runner when a call runs past its timeout (a thread cannot be stopped alone)."""

    def __init__(self, outbox):
        self._outbox = outbox
        self._lock = threading.Lock()
        self._running = {}  # call id -> deadline (monotonic seconds)
        self._thread = None

    def start(self, call_id, timeout_ms):
        if not timeout_ms:
            return
        with self._lock:
            self._running[call_id] = time.monotonic() + timeout_ms / 1000.0
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="skiff-watchdog", daemon=True)
                self._thread.start()

    def done(self, call_id):
        with self._lock:
            self._running.pop(call_id, None)

    def _watch(self):
        while True:
            time.sleep(0.05)
            now = time.monotonic()
            with self._lock:
                late = [c for c, deadline in self._running.items() if deadline <= now]
            if late:
                for call_id in late:
                    self._outbox.send({"id": call_id, "ok": False, "timed_out": True, "error": {
                        "type": "Timeout", "message": "the call ran past its timeout",
                        "traceback": ""}})
                os._exit(_TIMED_OUT_EXIT)


def _error(exc, skip_frames=0):
    tb = exc.__traceback__
    for _ in range(skip_frames):  # the runner's own frames are not the user's business
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, tb)),
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


def _reply(call_id, result):
    """The reply to a call that returned result, and the raw bytes that follow it (or None)."""
    if isinstance(result, (bytes, bytearray, memoryview)):
        # bytes go back as they are, in a frame of their own after the reply
        raw = bytes(result)
        if len(raw) > _MAX_RESULT:
            return {"id": call_id, "ok": False, "error": {
                "type": "ResultTooLarge",
                "message": "the handler's result is %d bytes, over the %d a call may return"
                           % (len(raw), _MAX_RESULT),
                "traceback": ""}}, None
        return {"id": call_id, "ok": True, "raw": len(raw)}, raw
    try:
        size = len(json.dumps(result, separators=(",", ":")).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        error = _error(exc)
        error["message"] = "the handler's result is not JSON: " + str(exc)
        error["traceback"] = ""
        return {"id": call_id, "ok": False, "error": error}, None
    if size > _MAX_RESULT:
        return {"id": call_id, "ok": False, "error": {
            "type": "ResultTooLarge",
            "message": "the handler's result is %d bytes of JSON, over the %d a call may "
                       "return" % (size, _MAX_RESULT),
            "traceback": ""}}, None
    return {"id": call_id, "ok": True, "output": result}, None


def _serve(function, request, outbox, watchdog, hold):
    call_id = request["id"]
    _local.call = call_id
    out_of_memory = False
    raw = None
    watchdog.start(call_id, request.get("timeout_ms"))
    start = time.perf_counter()
    try:
        result = function(*request.get("args", []), **request.get("kwargs", {}))
    except MemoryError:
        # What the handler holds is freed only once this block is left: reply after it.
        out_of_memory = True
    except BaseException as exc:  # the handler's failure, whatever it is, is the call's
        reply = {"id": call_id, "ok": False, "error": _error(exc, skip_frames=1)}
    else:
        reply, raw = _reply(call_id, result)
    finally:
        elapsed = time.perf_counter() - start
        watchdog.done(call_id)
        sys.stdout.flush()
        _local.call = None
    if out_of_memory:
        # The container is replaced: a process that hit its memory limit is not trusted again.
        outbox.send({"id": call_id, "ok": False, "out_of_memory": True, "error": {
            "type": "MemoryError", "message": "the handler ran out of memory", "traceback": ""}})
        os._exit(_OUT_OF_MEMORY_EXIT)
    reply["us"] = int(elapsed * 1e6)
    if hold:
        outbox.hold(reply, raw)
    else:
        outbox.send(reply, raw)


def main(argv):
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    tagged = _Tagged(sys.__stderr__)
    sys.stdout = tagged
    sys.stderr = tagged
    inbox = _Inbox(0)
    outbox = _Outbox(out)
    watchdog = _Watchdog(outbox)
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
    if concurrency <= 1:
        last_flush = time.monotonic()
        while True:
            request = inbox.receive(before_wait=outbox.flush)
            if request is None:
                break
            # Answers wait for the batch unless they have waited long enough (2 ms).
            _serve(function, request, outbox, watchdog, hold=True)
            now = time.monotonic()
            if not inbox.buffered() or now - last_flush > 0.002:
                outbox.flush()
                last_flush = now
        outbox.flush()
        return 0
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="skiff-call")
    while True:
        request = inbox.receive()
        if request is None:
            break
        pool.submit(_serve, function, request, outbox, watchdog, False)
    pool.shutdown(wait=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
