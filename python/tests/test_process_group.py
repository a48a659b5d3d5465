"""Stopping the whole process group, as berth does.

A onefile executable is two processes: the bootloader (the PID a supervisor
gets) and the Python process it starts. berth signals the whole group, so
the Python process receives SIGTERM twice (once from the group signal, once
forwarded by the bootloader). Both must be gone afterwards, and the graceful
path must have been taken.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import time

import pytest

from conftest import Backend, base_argv, require_executable

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")

GONE_DEADLINE_S = 5.0


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except OSError as err:
        if err.errno == errno.ESRCH:
            return False
        raise
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_group_signal_stops_every_process(spawn, variant, signum):
    b = spawn("--port", "0", start_new_session=True)
    ready = b.ready()
    pgid = os.getpgid(b.pid)
    assert pgid == b.pid, "the backend leads its own group"
    python_pid = ready["pid"]
    assert os.getpgid(python_pid) == pgid, "the Python process shares the group"
    if variant == "onefile":
        assert python_pid != b.pid, "onefile runs a bootloader and a Python process"

    os.killpg(pgid, signum)
    lines = b.finish()
    assert b.proc.returncode == 0, b.stderr

    deadline = time.monotonic() + GONE_DEADLINE_S
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not group_alive(pgid), "a process of the group survived"
    assert not pid_alive(python_pid)
    assert lines[-1] == {"status": "stopped"}
    assert [o for o in lines if o.get("status") == "stopping"] == [
        {"status": "stopping", "reason": signal.Signals(signum).name}
    ]
    assert "Traceback" not in b.stderr


def test_repeated_group_sigterm(spawn):
    b = spawn("--port", "0", start_new_session=True)
    b.ready()
    for _ in range(3):
        try:
            os.killpg(b.pid, signal.SIGTERM)
        except ProcessLookupError:
            break
    lines = b.finish()
    assert b.proc.returncode == 0, b.stderr
    assert [o.get("status") for o in lines].count("stopped") == 1
    assert lines[-1] == {"status": "stopped"}


@pytest.mark.skipif(os.name == "nt", reason="TMPDIR is the POSIX extraction folder")
def test_onefile_temp_folder_removed_on_graceful_stop_kept_after_sigkill(tmp_path):
    """The onefile trade-off: graceful stop cleans _MEIxxxxxx, SIGKILL cannot."""
    require_executable()
    env = dict(os.environ, TMPDIR=str(tmp_path))
    started = []
    try:
        graceful = Backend(base_argv("onefile") + ["--port", "0"], "onefile", env=env)
        started.append(graceful)
        graceful.ready()
        assert [p.name[:4] for p in tmp_path.iterdir()] == ["_MEI"]
        os.killpg(graceful.pid, signal.SIGTERM)
        assert graceful.wait() == 0
        assert list(tmp_path.iterdir()) == [], "graceful stop must remove _MEI"

        killed = Backend(base_argv("onefile") + ["--port", "0"], "onefile", env=env)
        started.append(killed)
        killed.ready()
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
        leftovers = list(tmp_path.iterdir())
        assert len(leftovers) == 1 and leftovers[0].name.startswith("_MEI")
    finally:
        for backend in started:
            backend.kill()
        shutil.rmtree(tmp_path, ignore_errors=True)  # 30+ MB of unpacked runtime
