"""berth_backend, the helper library: each promise, on a real process.

``helper_app.py`` is a small backend written with the helper. It runs as a
script, and once frozen into a PyInstaller onefile (built once per session
from this venv, without hooks and without ``--python-option u``): a onefile
is where signals arrive twice and where a missing flush shows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PYTHON_DIR, Backend

APP = Path(__file__).resolve().parent / "helper_app.py"


def helper_env(**extra: str) -> dict:
    env = dict(os.environ)
    for name in ("PORT", "BERTH_TOKEN", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(name, None)
    env["PYTHONPATH"] = str(PYTHON_DIR)
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def frozen_app(tmp_path_factory) -> Path:
    """helper_app.py as a onefile executable: one small build per session."""
    work = tmp_path_factory.mktemp("frozen")
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        if os.environ.get("BACKEND_REQUIRE_EXECUTABLE") == "1":
            pytest.fail("PyInstaller is not installed and BACKEND_REQUIRE_EXECUTABLE=1")
        pytest.skip("PyInstaller is not installed (run python/build.sh)")
    subprocess.run(
        [
            sys.executable, "-m", "PyInstaller", "--onefile", "--name", "helper_app",
            "--paths", str(PYTHON_DIR), "--noupx", "--noconfirm", "--log-level", "WARN",
            "--specpath", str(work), "--workpath", str(work / "build"),
            "--distpath", str(work / "dist"), str(APP),
        ],
        check=True,
        capture_output=True,
    )
    exe = work / "dist" / ("helper_app.exe" if os.name == "nt" else "helper_app")
    assert exe.exists()
    return exe


@pytest.fixture(params=["script", "frozen"])
def argv(request) -> list:
    if request.param == "script":
        return [sys.executable, str(APP)]
    return [str(request.getfixturevalue("frozen_app"))]


def run(argv: list, *extra: str, **env: str) -> Backend:
    variant = "frozen" if argv[0] != sys.executable else "script"
    return Backend(argv + list(extra), variant, env=helper_env(**env))


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5.0)
    yield path, sock
    sock.close()


def datagrams(sock: socket.socket, count: int) -> list:
    return [sock.recv(4096).decode() for _ in range(count)]


def test_ready_prints_the_line_with_fields_and_port_token_come_from_the_environment(argv):
    app = run(argv, PORT="5123", BERTH_TOKEN="s3cret")
    try:
        env = app.expect(lambda o: o.get("event") == "env", 30, "env line")
        assert env == {"event": "env", "port": 5123, "token": "s3cret"}
        line = app.ready()
        assert line["port"] == 5123 and isinstance(line["pid"], int)
    finally:
        app.kill()


def test_without_the_variables_port_and_token_are_none(argv):
    app = run(argv)
    try:
        env = app.expect(lambda o: o.get("event") == "env", 30, "env line")
        assert env == {"event": "env", "port": None, "token": None}
        assert app.ready()["port"] == 0
    finally:
        app.kill()


def test_a_bad_port_is_a_clear_error(monkeypatch):
    sys.path.insert(0, str(PYTHON_DIR))
    import berth_backend

    monkeypatch.setenv("PORT", "http")
    with pytest.raises(ValueError, match="PORT is not a port number: 'http'"):
        berth_backend.port()
    monkeypatch.setenv("PORT", "70000")
    with pytest.raises(ValueError, match="out of range"):
        berth_backend.port()


def test_print_reaches_a_pipe_at_once_line_buffered(argv):
    # The env line is a plain print(); the app then blocks on stdin. Without
    # line buffering it would sit in an 8 KiB buffer until exit.
    app = run(argv)
    try:
        app.expect(lambda o: o.get("event") == "env", 30, "env line")
        assert app.proc.poll() is None
    finally:
        app.kill()


def test_sd_notify_ready_with_status_and_the_status_line(argv, notify_socket):
    path, sock = notify_socket
    app = run(argv, "--no-stdin", NOTIFY_SOCKET=path, PORT="4000")
    try:
        first, second = datagrams(sock, 2)
        assert first == "STATUS=warming up"
        assert second == "READY=1\nSTATUS=listening on port 4000"
        app.ready()
    finally:
        app.kill()


def test_watchdog_beats_at_half_the_interval(argv, notify_socket):
    path, sock = notify_socket
    app = run(argv, "--no-stdin", NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
    try:
        app.ready()
        beats = []
        start = time.monotonic()
        while len(beats) < 4:
            message = sock.recv(4096).decode()
            if message == "WATCHDOG=1":
                beats.append(time.monotonic())
        # Four beats at 0.2 s take about 0.6 s after the first; the interval
        # itself (0.4 s) would take 1.2 s.
        assert beats[-1] - beats[0] < 1.0, beats
        assert beats[-1] - start < 10
    finally:
        app.kill()


def test_no_watchdog_without_watchdog_usec(argv, notify_socket):
    path, sock = notify_socket
    app = run(argv, "--no-stdin", NOTIFY_SOCKET=path)
    try:
        assert datagrams(sock, 2)[1].startswith("READY=1")
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(4096)
    finally:
        app.kill()


@pytest.mark.skipif(os.name == "nt", reason="POSIX process groups")
def test_sigterm_twice_to_the_group_runs_the_shutdown_once(argv, notify_socket):
    path, sock = notify_socket
    app = run(argv, NOTIFY_SOCKET=path)
    app.ready()
    # What berth does: the whole group, so a onefile's Python process gets
    # it from berth and again from its bootloader; then once more by hand.
    os.killpg(app.pid, signal.SIGTERM)
    time.sleep(0.2)
    try:
        os.killpg(app.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    lines = app.finish()
    assert app.proc.returncode == 0, app.stderr
    shutdowns = [o for o in lines if o.get("event") == "shutdown"]
    assert shutdowns == [{"event": "shutdown", "reason": "SIGTERM"}], lines
    assert lines[-1] == {"event": "stopped", "reason": "SIGTERM"}
    messages = datagrams(sock, 3)
    assert messages[-1] == "STOPPING=1"


def test_sigint_stops_too(argv):
    app = run(argv)
    app.ready()
    app.proc.send_signal(signal.SIGINT)
    lines = app.finish()
    assert lines[-1] == {"event": "stopped", "reason": "SIGINT"}


def test_commands_and_replies_echo_the_id(argv):
    app = run(argv)
    try:
        app.ready()
        app.send('{"action": "ping", "id": 7}\n{"action": "ping"}\nnot json\n[1]\n')
        assert app.expect(lambda o: "reply" in o, 30, "reply") == {
            "reply": "pong", "action": "ping", "id": 7,
        }
        assert app.expect(lambda o: "reply" in o, 30, "reply") == {
            "reply": "pong", "action": "ping",
        }
        bad_json = app.expect(lambda o: "error" in o, 30, "error")
        assert bad_json["error"].startswith("invalid JSON")
        assert app.expect(lambda o: "error" in o, 30, "error") == {
            "error": "expected a JSON object",
        }
        app.send('{"action": "shutdown", "id": "x"}\n')
        lines = app.finish()
        assert {"reply": "shutting down", "id": "x"} in lines
        assert lines[-1] == {"event": "stopped", "reason": "shutdown command"}
    finally:
        app.kill()


def test_end_of_stdin_stops_gracefully(argv):
    app = run(argv)
    app.ready()
    app.close_stdin()
    lines = app.finish()
    assert app.proc.returncode == 0
    assert {"event": "shutdown", "reason": "stdin closed"} in lines
    assert lines[-1] == {"event": "stopped", "reason": "stdin closed"}


def test_a_line_over_the_limit_is_refused_and_the_next_one_served():
    app = run([sys.executable, str(APP)])
    try:
        app.ready()
        app.send("x" * (70 * 1024) + '\n{"action": "ping", "id": 1}\n')
        assert app.expect(lambda o: "error" in o, 30, "error") == {
            "error": "command longer than 65536 bytes",
        }
        assert app.expect(lambda o: "reply" in o, 30, "reply")["id"] == 1
    finally:
        app.kill()


def test_pip_installs_the_package(tmp_path):
    target = tmp_path / "site"
    # No build isolation: the venv's setuptools builds it, without the network.
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--disable-pip-version-check",
            "--target", str(target), str(PYTHON_DIR),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    assert (target / "berth_backend" / "__init__.py").exists()
    out = subprocess.run(
        [sys.executable, "-c", "import berth_backend, sys; print(berth_backend.__file__)"],
        env={**os.environ, "PYTHONPATH": str(target)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith(str(target))
