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
script runs on any Python 3.8+. The supervision chores (JSON lines, sd_notify
and the watchdog, signals handled once, stdin commands) are the
``berth_backend`` helper's, beside this file; what is left here is the
server itself.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import urlsplit

import berth_backend as berth

__version__ = "1.0.0"

#: The HTTP server's poll interval, and how often the main thread looks at
#: the stop request: together they bound the stop latency to about 0.1 s.
LOOP_PERIOD_S = 0.05


def log(debug: bool, message: str) -> None:
    """Diagnostics go to stderr (the supervisor logs it), only with --debug."""
    if debug:
        try:
            print(f"backend: {message}", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass


class Backend:
    """Owns the HTTP server; berth_backend owns the stop request and stdin."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started_at = time.monotonic()
        self.server: Optional[ThreadingHTTPServer] = None

    @property
    def stopping(self) -> bool:
        return berth.stopping() is not None

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

    def serve_commands(self) -> None:
        """One reply line per command, until end of stdin or a stop."""
        for command in berth.commands(required="action"):
            action = command["action"]
            if action == "ping":
                berth.reply(command, reply="pong")
            elif action == "shutdown":
                berth.reply(command, reply="shutting down")
                berth.shutdown("shutdown command")
            else:
                berth.reply(command, error=f"unknown action: {json.dumps(action)}")

    # -- main ---------------------------------------------------------------

    def run(self) -> int:
        # First: a signal during start-up is a stop request, not a traceback.
        berth.on_shutdown()
        berth.emit({"status": "starting"})
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
        # The JSON line, READY=1 with "listening on port N", the watchdog.
        berth.ready(port=port, pid=os.getpid())
        # Commands are read only once ready, so a reply never precedes the
        # ready line.
        if not self.args.no_stdin:
            threading.Thread(target=self.serve_commands, name="stdin", daemon=True).start()
        log(self.args.debug, f"serving on {_format_address(self.args.host, port)}")

        reason = berth.wait_for_shutdown(LOOP_PERIOD_S)

        berth.emit({"status": "stopping", "reason": reason})
        self.server.shutdown()  # returns once serve_forever has left its loop
        self.server.server_close()
        server_thread.join(timeout=1.0)
        log(self.args.debug, f"stopped ({reason})")
        # The last thing printed on the graceful path: berth's tests look for it.
        berth.emit({"status": "stopped"})
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
