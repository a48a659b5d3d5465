"""Life cycle: JSON status lines, graceful stop on signals, arguments, exits."""

from __future__ import annotations

import os
import signal
import socket
import sys

import pytest

from conftest import STOP_DEADLINE_S

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")


def assert_graceful(lines: list, reason: str) -> None:
    """starting, ready, ..., stopping (with reason), stopped: in that order."""
    statuses = [o["status"] for o in lines if "status" in o]
    assert statuses[0] == "starting", lines
    assert statuses[1] == "ready", lines
    assert statuses[-2:] == ["stopping", "stopped"], lines
    assert statuses.count("stopped") == 1, lines
    assert lines[-1] == {"status": "stopped"}, "stopped must be the last line"
    stopping = [o for o in lines if o.get("status") == "stopping"]
    assert stopping == [{"status": "stopping", "reason": reason}], lines


def test_ready_line_reports_port_and_pid(backend):
    line = backend.ready_line
    assert set(line) == {"status", "port", "pid"}
    assert isinstance(line["port"], int) and 0 < line["port"] < 65536
    if backend.variant == "script":
        assert line["pid"] == backend.pid
    else:
        # Onefile: the PID berth spawns is the bootloader's; the ready line
        # names the Python process, which the bootloader started.
        assert line["pid"] != backend.pid
        if sys.platform.startswith("linux"):
            stat = open(f"/proc/{line['pid']}/stat").read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            assert ppid == backend.pid


def test_every_stdout_line_is_json_and_flushed_before_exit(backend):
    # The ready line arrived while the process was running (the fixture
    # waited for it): stdout is not block-buffered, also when frozen.
    assert backend.proc.poll() is None
    backend.close_stdin()
    lines = backend.finish()
    assert_graceful(lines, "stdin closed")
    assert backend.proc.returncode == 0


@posix_only
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_gracefully(backend, signum):
    # Sent to the spawned PID only: for onefile that is the bootloader, which
    # must forward it to Python (no --bootloader-ignore-signals).
    os.kill(backend.pid, signum)
    lines = backend.finish()
    assert backend.proc.returncode == 0, backend.stderr
    assert_graceful(lines, signal.Signals(signum).name)
    assert "Traceback" not in backend.stderr


@posix_only
def test_double_sigterm_is_harmless(backend):
    os.kill(backend.pid, signal.SIGTERM)
    os.kill(backend.pid, signal.SIGTERM)
    lines = backend.finish()
    assert backend.proc.returncode == 0, backend.stderr
    assert_graceful(lines, "SIGTERM")
    assert "Traceback" not in backend.stderr


@posix_only
def test_sigterm_during_startup_still_stops_gracefully(spawn):
    b = spawn("--port", "0")
    b.expect(lambda o: o.get("status") == "starting", 30, "starting line")
    os.kill(b.pid, signal.SIGTERM)
    lines = b.finish()
    assert b.proc.returncode == 0, b.stderr
    assert lines[-1] == {"status": "stopped"}


def test_end_of_stdin_exits_cleanly(backend):
    backend.close_stdin()
    lines = backend.finish()
    assert backend.proc.returncode == 0
    assert_graceful(lines, "stdin closed")


def test_no_stdin_flag_keeps_running_at_end_of_file(spawn):
    b = spawn("--port", "0", "--no-stdin")
    b.ready()
    b.close_stdin()
    with pytest.raises(AssertionError, match="still running"):
        b.wait(timeout=1.0)
    if os.name != "nt":
        os.kill(b.pid, signal.SIGTERM)
        assert b.wait() == 0


def test_port_zero_picks_distinct_free_ports(spawn):
    first, second = spawn("--port", "0"), spawn("--port", "0")
    p1, p2 = first.ready()["port"], second.ready()["port"]
    assert p1 != p2
    for port in (p1, p2):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_explicit_port_is_used(spawn):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    b = spawn("--port", str(port))
    assert b.ready()["port"] == port


def test_default_host_is_loopback(backend):
    with socket.create_connection(("127.0.0.1", backend.port), timeout=5):
        pass


def test_port_in_use_exits_1_with_error_on_stderr(spawn):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        b = spawn("--port", str(port))
        lines = b.finish(timeout=30)
    assert b.proc.returncode == 1
    assert not any(o.get("status") == "ready" for o in lines), lines
    assert f"cannot listen on 127.0.0.1:{port}" in b.stderr
    assert "Traceback" not in b.stderr
    assert len(b.stderr.strip().splitlines()) == 1, b.stderr


@pytest.mark.parametrize(
    "args",
    [["--port", "abc"], ["--port", "70000"], ["--port", "-1"], ["--bogus"], ["extra"]],
)
def test_bad_arguments_exit_2(spawn, args):
    b = spawn(*args)
    lines = b.finish(timeout=30)
    assert b.proc.returncode == 2
    assert lines == []
    assert "usage:" in b.stderr


def test_version_flag(spawn):
    b = spawn("--version")
    assert b.drain(timeout=30) == ["backend 1.0.0"]
    assert b.proc.returncode == 0


def test_stop_is_prompt(backend):
    # The target is "well under a second"; the deadline is generous (3x a
    # second) for a shared machine. Speed itself is measured by the bench.
    import time

    start = time.monotonic()
    backend.send('{"action": "shutdown"}\n')
    backend.finish(timeout=STOP_DEADLINE_S)
    assert time.monotonic() - start < 3.0


def _ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback here")
def test_ipv6_host(spawn):
    b = spawn("--host", "::1", "--port", "0")
    port = b.ready()["port"]
    socket.create_connection(("::1", port), timeout=5).close()


def test_unresolvable_host_exits_1(spawn):
    b = spawn("--host", "host.invalid", "--port", "0")
    lines = b.finish(timeout=30)
    assert b.proc.returncode == 1
    assert lines == [{"status": "starting"}]
    assert b.stderr.startswith("backend: error: cannot listen on host.invalid:0: ")
