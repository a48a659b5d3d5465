"""A FastAPI backend for berth, written with the berth_backend helper.

berth chooses its port (``port: auto``, ``PORT``) and a secret for each run
(``token: true``, ``BERTH_TOKEN``). Every ``/api`` route refuses a request
without ``Authorization: Bearer <token>`` (401), so only the socket's own
user, who reads the token from ``berth status --json``, can call it; the
"Open web UI" action opens ``/?token=...``, and the page sends it on.

Uvicorn runs in a thread: the main thread keeps the signal handlers of
``berth_backend`` (SIGTERM and SIGINT handled once, though a onefile build
receives them twice), and a stop asks uvicorn to finish its requests.
"""

import hmac
import os
import sys
import threading
import time

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import HTMLResponse

import berth_backend as berth

TOKEN = berth.token()
app = FastAPI(title="berth FastAPI example")


def authorized(authorization: str = Header(default="")) -> None:
    """401 unless the request carries this run's token."""
    expected = f"Bearer {TOKEN}" if TOKEN else None
    if expected is None or not hmac.compare_digest(authorization, expected):
        raise HTTPException(status_code=401, detail="a bearer token is required")


@app.get("/api/status", dependencies=[Depends(authorized)])
def status() -> dict:
    return {"status": "running", "pid": os.getpid()}


@app.get("/", response_class=HTMLResponse)
def index() -> str:
    # The page carries no secret: it reads the token from its own URL.
    return """<!doctype html><title>berth FastAPI example</title>
<pre id="out">...</pre>
<script>
const token = new URLSearchParams(location.search).get("token");
fetch("/api/status", { headers: { Authorization: "Bearer " + token } })
  .then(r => r.text()).then(t => { document.getElementById("out").textContent = t; });
</script>"""


def main() -> int:
    port = berth.port(8000)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    berth.on_shutdown(lambda: setattr(server, "should_exit", True))
    thread = threading.Thread(target=server.run, name="uvicorn")
    thread.start()
    while not server.started:
        if not thread.is_alive():  # the port was taken: exit, berth restarts
            return 1
        time.sleep(0.01)
    berth.ready(port=port)
    for command in berth.commands():
        berth.reply(command, reply="pong" if command.get("action") == "ping" else "unknown")
    berth.wait_for_shutdown()
    thread.join()
    berth.emit({"status": "stopped"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
