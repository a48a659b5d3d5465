"""A small backend written with berth_backend, for test_berth_backend.py.

Run as a script and frozen by PyInstaller (onefile, without
``--python-option u``, so the helper's own line buffering is what is tested).
"""

import json
import sys

import berth_backend as berth


def main() -> int:
    berth.on_shutdown(lambda: berth.emit({"event": "shutdown", "reason": berth.stopping()}))
    # A plain print, not emit: the helper makes stdout line-buffered, so it
    # reaches a pipe now, not at exit.
    print(json.dumps({"event": "env", "port": berth.port(), "token": berth.token()}))
    berth.status("warming up")
    berth.ready(port=berth.port(0), pid=__import__("os").getpid())
    if "--no-stdin" not in sys.argv:
        for command in berth.commands():
            if command.get("action") == "shutdown":
                berth.reply(command, reply="shutting down")
                berth.shutdown("shutdown command")
            else:
                berth.reply(command, reply="pong", action=command.get("action"))
    reason = berth.wait_for_shutdown()
    berth.emit({"event": "stopped", "reason": reason})
    return 0


if __name__ == "__main__":
    sys.exit(main())
