#!/usr/bin/env python3
"""The Python backend that berth ships: a small, well-behaved supervised server.

It exists to show (and to test) what a backend must do to live under a
supervisor such as berth, whether it runs as a script or as a PyInstaller
onefile executable:

* report its life cycle as flushed JSON lines on stdout
  (``{"status": "starting"}``, ``{"status": "ready", "port": N, "pid": P}``,
  ``{"status": "stopped"}``), so the supervisor can detect readiness and the
  log shows the graceful path was taken;
* stop gracefully, exit status 0, on SIGTERM, SIGINT (and SIGBREAK /
  CTRL_BREAK_EVENT on Windows), however many times the signal arrives: a
  supervisor that signals the whole process group reaches a onefile child
  twice, once directly and once forwarded by the PyInstaller bootloader;
* serve ``GET /api/status`` over HTTP (JSON, 404 as JSON);
* read one JSON command per line on stdin and exit when stdin reaches end of
  file (unless it is a terminal), so it cannot outlive a launcher that died
  and closed the pipe.

Standard library only, so that the frozen executable stays small and the
script runs on any Python 3.8+.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import urlsplit

__version__ = "1.0.0"

#: Longest stdin command accepted, in bytes; a longer line is discarded with an
#: error reply instead of growing memory without bound.
MAX_COMMAND_BYTES = 64 * 1024

#: How often the main loop re-checks the stop flag, and the HTTP server's
#: poll interval: together they bound the stop latency to about 0.15 s.
#: The flag is a plain attribute rather than a threading.Event on purpose:
#: Event.set takes a non-reentrant lock that the main thread may already hold
#: inside Event.wait when the signal handler runs there, a deadlock.
LOOP_PERIOD_S = 0.05

#: Signals that request a graceful stop. SIGBREAK is what CTRL_BREAK_EVENT
#: raises on Windows (the only console event a process group can be sent).
STOP_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGBREAK")
    if hasattr(signal, name)
)


class Output:
    """Serialises JSON lines on stdout from several threads, flushed at once.

    A supervisor that died leaves a closed pipe behind: the first write that
    fails with EPIPE turns stdout off (pointed at the null device) instead of
    killing the backend with a traceback in the middle of its shutdown.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._broken = False

    def emit(self, obj: dict) -> None:
        line = json.dumps(obj, separators=(", ", ": ")) + "\n"
        with self._lock:
            if self._broken:
                return
            try:
                sys.stdout.write(line)
                sys.stdout.flush()
            except (BrokenPipeError, ValueError, OSError):
                self._broken = True
                _silence_stdout()


def _silence_stdout() -> None:
    # Python flushes sys.stdout again at exit; on a broken pipe that prints
    # "Exception ignored ... BrokenPipeError". Pointing fd 1 at the null
    # device is the documented way to avoid it.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class Notifier:
    """sd_notify, systemd's readiness protocol, with the standard library.

    When the supervisor sets ``NOTIFY_SOCKET`` (berth does for
    ``ready: { notify: true }`` and ``health: { watchdog: D }``), READY=1 goes
    there with the port in STATUS, and WATCHDOG=1 every half of
    ``WATCHDOG_USEC``. ``WATCHDOG_PID`` is honoured as systemd defines it.
    Without the variable every call does nothing. A send that fails is
    ignored: notifying must never take the backend down.
    """

    def __init__(self, environ: Optional[dict] = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET") or ""
        if path.startswith("@"):
            path = "\0" + path[1:]
        self.path = path
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_s: Optional[float] = None
        if path and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6

    def send(self, message: str) -> None:
        if not self.path or not hasattr(socket, "AF_UNIX"):
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode("utf-8"), self.path)
        except OSError:
            pass

    def start_watchdog(self, stopping: Any) -> None:
        """Heartbeats at half the period until ``stopping()`` is true."""
        if self.watchdog_s is None:
            return
        period = self.watchdog_s / 2

        def beat() -> None:
            while not stopping():
                self.send("WATCHDOG=1")
                time.sleep(period)

        threading.Thread(target=beat, name="watchdog", daemon=True).start()


def log(debug: bool, message: str) -> None:
    """Diagnostics go to stderr (the supervisor logs it), only with --debug."""
    if debug:
        try:
            print(f"backend: {message}", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass


class Backend:
    """Owns the stop flag, the HTTP server and the stdin reader."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Output()
        # None while running; the first stop reason once a stop is requested.
        # Written by the signal handler and other threads; a single attribute
        # store is atomic under the GIL, and no lock is taken.
        self.stop_reason: Optional[str] = None
        self.started_at = time.monotonic()
        self.server: Optional[ThreadingHTTPServer] = None

    # -- stopping -----------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """Idempotent: the first reason wins, later requests change nothing.

        Called from the signal handler (main thread) and the stdin thread; a
        signal arriving twice (group signal plus the bootloader's forward)
        lands here twice and the second call is a no-op.
        """
        if self.stop_reason is None:
            self.stop_reason = reason

    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None

    def handle_signal(self, signum: int, _frame: Any) -> None:
        # Only sets a flag: no I/O in a signal handler, since the signal may
        # interrupt a write holding the stdout lock.
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        self.request_stop(name)

    def install_signal_handlers(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.handle_signal)

    # -- HTTP ---------------------------------------------------------------

    def status(self) -> dict:
        return {
            "status": "stopping" if self.stopping else "running",
            "pid": os.getpid(),
            "uptime": round(time.monotonic() - self.started_at, 3),
            "version": __version__,
        }

    def bind(self) -> ThreadingHTTPServer:
        """Binds the listening socket; OSError if the address is unusable."""
        host, port = self.args.host, self.args.port
        server_class = _server_class(host)
        return server_class((host, port), _make_handler(self))

    # -- stdin --------------------------------------------------------------

    def stdin_loop(self, fd: int, is_tty: bool) -> None:
        """Reads commands from the raw descriptor until end of file.

        os.read on the descriptor, not sys.stdin: a daemon thread blocked
        inside the buffered sys.stdin holds its lock, and the interpreter
        aborts at exit ("could not acquire lock for <stdin>") when it tries
        to take it.
        """
        pending = b""
        discarding = False
        while not self.stopping:
            try:
                chunk = os.read(fd, 65536)
            except InterruptedError:
                continue
            except OSError as err:
                log(self.args.debug, f"stdin: {err}")
                chunk = b""
            if not chunk:
                if is_tty:
                    # Ctrl-D at a terminal: an interactive user, not a dead
                    # launcher. Keep serving; later reads block again.
                    pending, discarding = b"", False
                    time.sleep(LOOP_PERIOD_S)
                    continue
                if pending and not discarding:
                    self.handle_command(pending)
                self.request_stop("stdin closed")
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
                self.handle_command(line)
            if len(pending) > MAX_COMMAND_BYTES:
                if not discarding:
                    self.out.emit(
                        {"error": f"command longer than {MAX_COMMAND_BYTES} bytes"}
                    )
                pending, discarding = b"", True

    def handle_command(self, raw: bytes) -> None:
        """One command line: never raises, answers exactly one line."""
        text = raw.strip()
        if not text:
            return
        if len(text) > MAX_COMMAND_BYTES:
            self.out.emit({"error": f"command longer than {MAX_COMMAND_BYTES} bytes"})
            return
        try:
            command = json.loads(text.decode("utf-8"))
        except UnicodeDecodeError:
            self.out.emit({"error": "command is not valid UTF-8"})
            return
        except ValueError as err:
            self.out.emit({"error": f"invalid JSON: {err}"})
            return
        if not isinstance(command, dict) or "action" not in command:
            self.out.emit({"error": 'expected a JSON object with an "action" field'})
            return
        action = command["action"]
        # A command's "id" is echoed in its reply, so a caller that sent
        # several (berth send --wait id=7) can tell which reply is its own.
        echo = {"id": command["id"]} if "id" in command else {}
        if action == "ping":
            self.out.emit({"reply": "pong", **echo})
        elif action == "shutdown":
            self.out.emit({"reply": "shutting down", **echo})
            self.request_stop("shutdown command")
        else:
            self.out.emit({"error": f"unknown action: {json.dumps(action)}", **echo})

    def start_stdin_reader(self) -> None:
        stream = sys.stdin
        if stream is None:  # pythonw / a GUI launch without a console
            return
        try:
            fd = stream.fileno()
            os.fstat(fd)
        except (OSError, ValueError, AttributeError):
            return  # no usable stdin at all: nothing to read, nothing to watch
        is_tty = os.isatty(fd)
        thread = threading.Thread(
            target=self.stdin_loop, args=(fd, is_tty), name="stdin", daemon=True
        )
        thread.start()

    # -- main ---------------------------------------------------------------

    def run(self) -> int:
        self.install_signal_handlers()
        self.out.emit({"status": "starting"})
        try:
            self.server = self.bind()
        except OSError as err:
            print(
                f"backend: error: cannot listen on "
                f"{_format_address(self.args.host, self.args.port)}: "
                f"{err.strerror or err}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        port = self.server.server_address[1]
        server_thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": LOOP_PERIOD_S},
            name="http",
            daemon=True,
        )
        server_thread.start()
        self.out.emit({"status": "ready", "port": port, "pid": os.getpid()})
        notifier = Notifier()
        notifier.send(f"READY=1\nSTATUS=listening on port {port}")
        notifier.start_watchdog(lambda: self.stopping)
        # Commands are read only once ready, so a reply never precedes the
        # ready line.
        if not self.args.no_stdin:
            self.start_stdin_reader()
        log(self.args.debug, f"serving on {_format_address(self.args.host, port)}")

        while not self.stopping:
            # A signal interrupts the sleep and runs the handler at once;
            # other threads are noticed within one period.
            time.sleep(LOOP_PERIOD_S)

        self.out.emit({"status": "stopping", "reason": self.stop_reason})
        notifier.send("STOPPING=1")
        self.server.shutdown()  # returns once serve_forever has left its loop
        self.server.server_close()
        server_thread.join(timeout=1.0)
        log(self.args.debug, f"stopped ({self.stop_reason})")
        # The last thing printed on the graceful path: berth's tests look for it.
        self.out.emit({"status": "stopped"})
        return 0


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _server_class(host: str) -> type:
    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        daemon_threads = True  # an in-flight request never blocks the exit
        # SO_REUSEADDR lets a second socket take a busy port on Windows;
        # there SO_EXCLUSIVEADDRUSE is set instead (in server_bind below).
        allow_reuse_address = os.name != "nt"

        def server_bind(self) -> None:
            # HTTPServer.server_bind calls socket.getfqdn(host), a reverse DNS
            # lookup that can take seconds on a badly configured network, for
            # a name nothing here uses. Bind like a plain TCPServer instead.
            if os.name == "nt" and hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
                self.socket.setsockopt(
                    socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1
                )
            socketserver.TCPServer.server_bind(self)
            self.server_name = host
            self.server_port = self.server_address[1]

    return Server


def _make_handler(backend: Backend) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"berth-python-backend/{__version__}"
        protocol_version = "HTTP/1.0"

        def _send_json(self, code: int, body: dict, head_only: bool = False) -> None:
            data = (json.dumps(body) + "\n").encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if code == 405:
                self.send_header("Allow", "GET, HEAD")
            self.end_headers()
            if not head_only:
                self.wfile.write(data)

        def _route(self, head_only: bool) -> None:
            path = urlsplit(self.path).path
            if path == "/api/status":
                self._send_json(200, backend.status(), head_only)
            else:
                self._send_json(
                    404, {"error": "not found", "path": path}, head_only
                )

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._route(head_only=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._route(head_only=True)

        def _method_not_allowed(self) -> None:
            self._send_json(405, {"error": f"method {self.command} not allowed"})

        do_POST = do_PUT = do_DELETE = do_PATCH = _method_not_allowed  # noqa: N815

        def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
            # Malformed requests (400, 414, 501...) answer JSON too, not the
            # stock HTML page.
            try:
                self.close_connection = True
                self._send_json(code, {"error": message or self.responses.get(code, ("error",))[0]})
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log(backend.args.debug, "http: " + (format % args))

    return Handler


def _port(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 0-65535: {value}")
    return value


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="backend",
        description="Python backend supervised by berth: HTTP status server "
        "with JSON life-cycle lines on stdout and JSON commands on stdin.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=0,
        help="TCP port; 0 picks a free one, reported in the ready line (default: %(default)s)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="log requests and diagnostics to stderr"
    )
    parser.add_argument(
        "--no-stdin",
        action="store_true",
        help="do not read commands from stdin nor exit at its end of file "
        "(for running detached, e.g. with stdin from /dev/null)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)  # exits 2 on bad arguments
    return Backend(args).run()


if __name__ == "__main__":
    sys.exit(main())
