"""sd_notify: READY=1 with the port in STATUS, WATCHDOG=1 at half of
WATCHDOG_USEC, STOPPING=1, against a datagram socket this test owns; and
the unmodified PyPI ``sdnotify`` client against the same kind of socket."""

from __future__ import annotations

import os
import socket
import time

import pytest

posix_only = pytest.mark.skipif(os.name == "nt", reason="Unix datagram sockets")


def receiver(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(30.0)
    return sock, path


@posix_only
def test_ready_watchdog_and_stopping(spawn, tmp_path):
    sock, path = receiver(tmp_path)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    b = spawn("--port", "0", env=env)
    line = b.ready()
    first = sock.recv(4096).decode()
    assert first == f"READY=1\nSTATUS=listening on port {line['port']}"
    t0 = time.monotonic()
    beats = [sock.recv(4096).decode() for _ in range(3)]
    elapsed = time.monotonic() - t0
    assert beats == ["WATCHDOG=1"] * 3
    # Half of 400 ms apart: three beats (the first at once) take about 0.4 s.
    assert 0.3 <= elapsed < 3.0, elapsed
    b.send('{"action": "shutdown"}\n')
    lines = b.finish()
    assert lines[-1] == {"status": "stopped"}, "the JSON lines still come"
    rest = []
    sock.settimeout(1.0)
    try:
        while True:
            rest.append(sock.recv(4096).decode())
    except socket.timeout:
        pass
    assert "STOPPING=1" in rest, rest


@posix_only
def test_silent_without_notify_socket(spawn, tmp_path):
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    b = spawn("--port", "0", env=env)
    b.ready()
    b.send('{"action": "shutdown"}\n')
    assert b.finish()[-1] == {"status": "stopped"}


@posix_only
def test_the_pypi_sdnotify_client_speaks_the_same_protocol(tmp_path, monkeypatch):
    import sdnotify  # the unmodified PyPI package (requirements-dev.txt)

    sock, path = receiver(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    n = sdnotify.SystemdNotifier()
    n.notify("READY=1\nSTATUS=up")
    assert sock.recv(4096) == b"READY=1\nSTATUS=up"
