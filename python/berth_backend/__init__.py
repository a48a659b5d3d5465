"""berth_backend: what every backend under berth must get right, in one import.

A supervisor such as berth expects a few things of the programs it runs, and
each is easy to get subtly wrong by hand:

* readiness: one flushed JSON line on stdout (``ready(port=8000)`` prints
  ``{"status": "ready", "port": 8000}``), and sd_notify's ``READY=1`` when
  ``NOTIFY_SOCKET`` is set (``ready: { notify: true }``);
* the watchdog: ``WATCHDOG=1`` every half of ``WATCHDOG_USEC``, from a thread
  (``health: { watchdog: 10s }``);
* the port and the secret berth chose for this run (``port: auto`` and
  ``token: true`` in the manifest): ``port()`` and ``token()``;
* a graceful stop on SIGTERM and SIGINT that runs once, although a
  PyInstaller onefile build receives the signal twice (once from the
  supervisor, once forwarded by its bootloader): ``on_shutdown(fn)``;
* output that reaches the supervisor line by line, never stuck in a buffer,
  and that survives a supervisor that went away (a broken pipe);
* commands as JSON lines on stdin (``berth send``, ``send`` actions), each
  reply echoing the command's ``id`` so ``berth send --wait id=7`` finds it:
  ``for command in commands(): reply(command, ...)``.

Standard library only, Python 3.8+, and nothing PyInstaller needs a hook for.

    import berth_backend as berth

    berth.on_shutdown(server.stop)
    server.listen(port=berth.port())
    berth.ready(port=berth.port())
    for command in berth.commands():
        berth.reply(command, reply="pong")
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

__all__ = [
    "MAX_COMMAND_BYTES",
    "commands",
    "emit",
    "notify",
    "on_shutdown",
    "port",
    "ready",
    "reply",
    "shutdown",
    "status",
    "stopping",
    "token",
    "wait_for_shutdown",
]

__version__ = "1.0.0"

#: Longest stdin command accepted, in bytes: a longer line is discarded with
#: an error line instead of growing memory without bound (berth's own limit
#: for ``send`` is the same 64 KiB).
MAX_COMMAND_BYTES = 64 * 1024

#: Signals that request a graceful stop. SIGBREAK is what CTRL_BREAK_EVENT
#: raises on Windows (the only console event a process group can be sent).
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGBREAK") if hasattr(signal, name)
)

# -- output -----------------------------------------------------------------

_out_lock = threading.Lock()
_out_broken = False


def emit(obj: Dict[str, Any]) -> None:
    """Prints ``obj`` as one JSON line on stdout, flushed, from any thread.

    A supervisor that died leaves a closed pipe behind: the first write that
    fails turns stdout off (pointed at the null device) instead of killing
    the backend with a traceback in the middle of its shutdown.
    """
    global _out_broken
    line = json.dumps(obj, separators=(", ", ": ")) + "\n"
    with _out_lock:
        if _out_broken or sys.stdout is None:
            return
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (OSError, ValueError):
            _out_broken = True
            _silence_stdout()


def _silence_stdout() -> None:
    # Python flushes sys.stdout again at exit; on a broken pipe that prints
    # "Exception ignored ... BrokenPipeError". Pointing fd 1 at the null
    # device is the documented way to avoid it.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _line_buffered() -> None:
    # A pipe makes Python's stdout block-buffered: print() from the
    # application (or a library it uses) would reach the supervisor only
    # when 8 KiB have piled up. A frozen app ignores PYTHONUNBUFFERED.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(line_buffering=True)
            except (OSError, ValueError):
                pass


_line_buffered()

# -- what berth chose for this run ------------------------------------------


def port(default: Optional[int] = None) -> Optional[int]:
    """The TCP port berth chose for this run (``PORT``, from ``port: auto``).

    ``default`` when the variable is not set (run by hand); a value that is
    not a port number is a ``ValueError`` naming it.
    """
    text = os.environ.get("PORT", "")
    if not text:
        return default
    try:
        value = int(text, 10)
    except ValueError:
        raise ValueError(f"PORT is not a port number: {text!r}") from None
    if not 0 < value < 65536:
        raise ValueError(f"PORT is out of range 1-65535: {value}")
    return value


def token() -> Optional[str]:
    """This run's secret (``BERTH_TOKEN``, from ``token: true``), or None.

    Compare it with ``hmac.compare_digest``, never with ``==``.
    """
    return os.environ.get("BERTH_TOKEN") or None


# -- sd_notify --------------------------------------------------------------


def _notify_address() -> str:
    path = os.environ.get("NOTIFY_SOCKET") or ""
    if path.startswith("@"):  # an abstract socket, as systemd spells it
        path = "\0" + path[1:]
    return path


def notify(message: str) -> bool:
    """Sends one sd_notify datagram (``READY=1``, ``STATUS=...``).

    Does nothing, and returns False, without ``NOTIFY_SOCKET``; a failed send
    is ignored too: notifying must never take the backend down.
    """
    path = _notify_address()
    if not path or not hasattr(socket, "AF_UNIX"):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode("utf-8"), path)
    except OSError:
        return False
    return True


def status(text: str) -> None:
    """A one-line status (sd_notify ``STATUS=``): berth shows it as
    ``status_line``. Does nothing without ``NOTIFY_SOCKET``."""
    notify("STATUS=" + " ".join(str(text).split()))


_watchdog_started = False


def _watchdog_period() -> Optional[float]:
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not _notify_address() or not usec.isdigit() or int(usec) <= 0:
        return None
    # systemd's rule: WATCHDOG_PID, when set, names the process that must
    # send. berth never sets it (a onefile's Python is not the leader).
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1e6 / 2


def _start_watchdog() -> None:
    """Heartbeats at half of ``WATCHDOG_USEC`` until a stop is requested."""
    global _watchdog_started
    period = _watchdog_period()
    if period is None or _watchdog_started:
        return
    _watchdog_started = True

    def beat() -> None:
        while not stopping():
            notify("WATCHDOG=1")
            time.sleep(period)

    threading.Thread(target=beat, name="berth-watchdog", daemon=True).start()


def ready(status_text: Optional[str] = None, **fields: Any) -> None:
    """Says the backend is ready to serve.

    Prints ``{"status": "ready", **fields}`` (what ``ready: { stdout_json:
    { status: ready } }`` waits for; ``${ready.KEY}`` in the manifest reads
    these fields), sends ``READY=1`` with a ``STATUS`` line when
    ``NOTIFY_SOCKET`` is set, and starts the watchdog heartbeat when
    ``WATCHDOG_USEC`` is set. ``status_text`` defaults to "listening on port
    N" when a ``port`` field is given, else "ready".
    """
    emit({"status": "ready", **fields})
    if status_text is None:
        status_text = f"listening on port {fields['port']}" if "port" in fields else "ready"
    notify("READY=1\nSTATUS=" + " ".join(str(status_text).split()))
    _start_watchdog()


# -- stopping ---------------------------------------------------------------
#
# The signal handler only records the reason and wakes a thread: it runs in
# the main thread between two bytecodes, possibly while that thread holds the
# stdout lock in the middle of a line, so anything that prints (or takes a
# lock the program holds) would deadlock there. The ``on_shutdown`` functions
# run in that thread instead. ``_stop_reason`` is written before the event is
# set, and the handler returns at once when it is already written: so the
# handler never calls ``set`` while the interrupted main thread is inside
# ``set`` itself (a non-reentrant lock).

_stop_reason: Optional[str] = None
_stop_event = threading.Event()
_hooks_done = False
_shutdown_hooks: List[Callable[[], Any]] = []
_hooks_lock = threading.Lock()
_handlers_installed = False


def _request_stop(reason: str) -> None:
    """The first request wins; later ones (the bootloader's forwarded copy of
    the signal, a second Ctrl-C) change nothing."""
    global _stop_reason
    if _stop_reason is not None:
        return
    _stop_reason = reason
    _stop_event.set()


def _run_hooks() -> None:
    global _hooks_done
    _stop_event.wait()
    notify("STOPPING=1")
    with _hooks_lock:
        hooks = list(_shutdown_hooks)
    for hook in hooks:
        try:
            hook()
        except Exception as err:  # a hook's failure must not stop the others
            try:
                print(f"berth_backend: on_shutdown hook failed: {err!r}", file=sys.stderr, flush=True)
            except (OSError, ValueError):
                pass
    _hooks_done = True


def _handle_signal(signum: int, _frame: Any) -> None:
    if _stop_reason is not None:
        return
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = str(signum)
    _request_stop(name)


def _install_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    for signum in STOP_SIGNALS:
        signal.signal(signum, _handle_signal)
    threading.Thread(target=_run_hooks, name="berth-shutdown", daemon=True).start()
    _handlers_installed = True


def on_shutdown(fn: Optional[Callable[[], Any]] = None) -> None:
    """Calls ``fn`` once, at the first SIGTERM or SIGINT (SIGBREAK on
    Windows), end of stdin under ``commands()``, or ``shutdown()``; the
    signals that follow are ignored.

    Installs the handlers: call it from the main thread, early. ``fn`` runs
    in a helper thread ("berth-shutdown"), the functions in the order they
    were given, so it may print, take locks and ask a server to stop.
    ``on_shutdown()`` without ``fn`` only installs the handlers; then poll
    ``stopping()`` or block in ``wait_for_shutdown()``.
    """
    _install_handlers()
    if fn is not None:
        with _hooks_lock:
            _shutdown_hooks.append(fn)


def shutdown(reason: str = "shutdown") -> None:
    """Requests the graceful stop from the program itself (a ``shutdown``
    command): the ``on_shutdown`` functions run once, as for a signal."""
    _install_handlers()
    _request_stop(reason)


def stopping() -> Optional[str]:
    """None while running; the reason of the first stop request after
    (``"SIGTERM"``, ``"stdin closed"``...)."""
    return _stop_reason


def wait_for_shutdown(poll: float = 0.05) -> str:
    """Blocks until a stop is requested and the ``on_shutdown`` functions
    have run; returns the reason.

    Sleeps in short steps rather than on the event: a signal then interrupts
    the sleep at once, and the main thread never waits on a lock the handler
    may need.
    """
    _install_handlers()
    while not _hooks_done:
        time.sleep(poll)
    return _stop_reason or "shutdown"


# -- commands on stdin ------------------------------------------------------


def reply(command: Dict[str, Any], **fields: Any) -> None:
    """Prints the reply to ``command`` as one JSON line, with the command's
    ``id`` when it had one (so a caller that sent several can tell)."""
    out = dict(fields)
    if isinstance(command, dict) and "id" in command:
        out["id"] = command["id"]
    emit(out)


def commands(stop_at_eof: bool = True, required: Optional[str] = None) -> Iterator[Dict[str, Any]]:
    """The JSON objects written to stdin, one per line, as they arrive.

    A line that is not a JSON object (bad JSON, not UTF-8, over
    :data:`MAX_COMMAND_BYTES`) is answered with one ``{"error": ...}`` line
    and skipped. Ends when a stop is requested, or at end of file: then,
    unless stdin is a terminal (an interactive user's Ctrl-D), a graceful
    stop is requested (``stopping() == "stdin closed"``), so a backend never
    outlives a supervisor that died and closed the pipe; ``stop_at_eof=False``
    turns that off. Without a usable stdin it ends at once. With
    ``required="action"``, an object without that key is refused too.

    Reads the raw descriptor, not ``sys.stdin``: a thread blocked inside the
    buffered ``sys.stdin`` holds its lock, and the interpreter aborts at exit
    trying to take it.
    """
    stream = sys.stdin
    if stream is None:  # pythonw / a GUI launch without a console
        return
    try:
        fd = stream.fileno()
        os.fstat(fd)
    except (OSError, ValueError, AttributeError):
        return
    is_tty = os.isatty(fd)
    pending = b""
    discarding = False
    while _stop_reason is None:
        if not _readable(fd):
            continue
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            if is_tty:
                pending, discarding = b"", False
                time.sleep(0.05)
                continue
            if pending and not discarding:
                command = _parse(pending, required)
                if command is not None:
                    yield command
            if stop_at_eof:
                _request_stop("stdin closed")
            return
        pending += chunk
        while True:
            newline = pending.find(b"\n")
            if newline < 0:
                break
            line, pending = pending[:newline], pending[newline + 1 :]
            if discarding:
                discarding = False
                continue
            command = _parse(line, required)
            if command is not None:
                yield command
                if _stop_reason is not None:
                    return
        if len(pending) > MAX_COMMAND_BYTES:
            if not discarding:
                emit({"error": f"command longer than {MAX_COMMAND_BYTES} bytes"})
            pending, discarding = b"", True


def _readable(fd: int) -> bool:
    """Waits up to 0.1 s for input. A read blocked in the main thread is
    resumed after a signal handler ran (PEP 475), so without this a SIGTERM
    would never end ``commands()``. Windows cannot select on a pipe: there
    the read blocks, and the loop ends at the next line or end of file."""
    if os.name == "nt":
        return True
    try:
        ready_fds, _, _ = select.select([fd], [], [], 0.1)
    except InterruptedError:
        return False
    except (OSError, ValueError):
        return True  # let the read report it
    return bool(ready_fds)


def _parse(raw: bytes, required: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """One line: the command, or None after printing why it is not one."""
    text = raw.strip()
    if not text:
        return None
    if len(text) > MAX_COMMAND_BYTES:
        emit({"error": f"command longer than {MAX_COMMAND_BYTES} bytes"})
        return None
    try:
        command = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        emit({"error": "command is not valid UTF-8"})
        return None
    except ValueError as err:
        emit({"error": f"invalid JSON: {err}"})
        return None
    if required is not None and (not isinstance(command, dict) or required not in command):
        emit({"error": f'expected a JSON object with an "{required}" field'})
        return None
    if not isinstance(command, dict):
        emit({"error": "expected a JSON object"})
        return None
    return command
