"""Fixtures that run the real backend, as a script and as the frozen executable.

Every test that takes the ``backend`` fixture runs twice: once with
``python backend.py`` (the interpreter running the tests) and once with the
PyInstaller onefile build ``python/dist/backend``. The executable variant is
skipped, with the reason, when it has not been built; ``python/test.sh``
builds it first and sets ``BACKEND_REQUIRE_EXECUTABLE=1``, which turns that
skip into a failure so CI can never pass without exercising the build.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

import pytest

PYTHON_DIR = Path(__file__).resolve().parent.parent
SCRIPT = PYTHON_DIR / "backend.py"
EXECUTABLE = PYTHON_DIR / "dist" / ("backend.exe" if os.name == "nt" else "backend")

#: Deadlines are generous (at least 3x the target) on a shared, noisy machine:
#: readiness takes well under a second, a graceful stop under 0.2 s.
READY_DEADLINE_S = 30.0
STOP_DEADLINE_S = 5.0


class Backend:
    """A running backend with its stdout parsed line by line in a thread."""

    def __init__(self, argv: List[str], variant: str, **popen_kwargs) -> None:
        self.variant = variant
        # Its own process group, as under berth: teardown then kills the
        # whole group, not only the onefile bootloader (which would orphan
        # the Python process, and its hold on the stdout pipe).
        popen_kwargs.setdefault("start_new_session", os.name != "nt")
        self._own_group = bool(popen_kwargs["start_new_session"])
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **popen_kwargs,
        )
        self.lines: List[str] = []  # every stdout line, raw text
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._stderr: List[bytes] = []
        self._stdout_thread = threading.Thread(target=self._pump_stdout, daemon=True)
        self._stdout_thread.start()
        self._stderr_thread = threading.Thread(target=self._pump_stderr, daemon=True)
        self._stderr_thread.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)  # end of file

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw)

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, predicate: Callable[[dict], bool], timeout: float, what: str) -> dict:
        """Waits for the next stdout JSON object matching predicate.

        Lines that do not match are skipped (they stay in self.lines); a
        stdout line that is not a JSON object fails the test: the backend
        promises JSON lines only.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.variant}: no {what} within {timeout}s; "
                    f"stdout={self.lines!r} stderr={self.stderr!r}"
                )
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"{self.variant}: stdout closed before {what}; "
                    f"stdout={self.lines!r} stderr={self.stderr!r}"
                )
            obj = json.loads(line)
            assert isinstance(obj, dict), f"stdout line is not a JSON object: {line!r}"
            if predicate(obj):
                return obj

    def ready(self) -> dict:
        return self.expect(lambda o: o.get("status") == "ready", READY_DEADLINE_S, "ready line")

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode("utf-8"))
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float = STOP_DEADLINE_S) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.variant}: still running {timeout}s after the stop request; "
                f"stdout={self.lines!r}"
            ) from None

    def drain(self, timeout: float = STOP_DEADLINE_S) -> List[str]:
        """Waits for the exit and for stdout's end; returns the raw lines."""
        self.wait(timeout)
        self._stdout_thread.join(timeout)
        return list(self.lines)

    def finish(self, timeout: float = STOP_DEADLINE_S) -> List[dict]:
        """Like drain, every line parsed: stdout carries JSON lines only."""
        return [json.loads(line) for line in self.drain(timeout)]

    def kill(self) -> None:
        """Cleanup as berth stops a backend: SIGTERM to the group, SIGKILL late.

        SIGKILL first would leave a onefile's _MEIxxxxxx folder behind (and,
        sent to the bootloader alone, orphan the Python process).
        """
        if self._own_group:
            for signum in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, signum)
                except (ProcessLookupError, PermissionError):
                    break
                try:
                    self.proc.wait(timeout=STOP_DEADLINE_S)
                    break
                except subprocess.TimeoutExpired:
                    continue
        elif self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=STOP_DEADLINE_S)
        # Let the pumps reach end of file before the streams are closed under
        # them (an orphaned grandchild may hold the pipe: bounded wait).
        self._stdout_thread.join(STOP_DEADLINE_S)
        self._stderr_thread.join(STOP_DEADLINE_S)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def base_argv(variant: str) -> List[str]:
    if variant == "script":
        return [sys.executable, str(SCRIPT)]
    return [str(EXECUTABLE)]


@pytest.fixture(scope="session", autouse=True)
def private_tmpdir(tmp_path_factory):
    """TMPDIR for every backend: a onefile unpacks into $TMPDIR/_MEIxxxxxx, so
    whatever a test leaves there stays out of the machine's /tmp."""
    path = tmp_path_factory.mktemp("backend-tmp")
    mp = pytest.MonkeyPatch()
    mp.setenv("TMPDIR", str(path))
    # The script must flush by itself, as the frozen build must: a harness
    # that exports PYTHONUNBUFFERED would hide a missing flush.
    mp.delenv("PYTHONUNBUFFERED", raising=False)
    yield path
    mp.undo()


def require_executable() -> None:
    """Skips the calling test if the onefile build is missing (fails instead
    under BACKEND_REQUIRE_EXECUTABLE=1, as test.sh runs it)."""
    if not EXECUTABLE.exists():
        reason = f"{EXECUTABLE} is not built (run python/build.sh)"
        if os.environ.get("BACKEND_REQUIRE_EXECUTABLE") == "1":
            pytest.fail(reason + " and BACKEND_REQUIRE_EXECUTABLE=1")
        pytest.skip(reason)


@pytest.fixture(params=["script", "onefile"])
def variant(request) -> str:
    if request.param == "onefile":
        require_executable()
    return request.param


@pytest.fixture
def spawn(variant):
    """Factory: spawn(*args, **popen_kwargs) -> Backend; all killed at teardown."""
    started: List[Backend] = []

    def _spawn(*args: str, **popen_kwargs) -> Backend:
        backend = Backend(base_argv(variant) + list(args), variant, **popen_kwargs)
        started.append(backend)
        return backend

    yield _spawn
    for backend in started:
        backend.kill()


@pytest.fixture
def backend(spawn) -> Backend:
    """A backend on a free port, already ready; ``backend.port`` is set."""
    b = spawn("--port", "0")
    b.ready_line = b.ready()
    b.port = b.ready_line["port"]
    return b
