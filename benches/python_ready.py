"""Time-to-ready and time-to-stop of the Python backend, per packaging.

Spawns each variant several times and measures, on the wall clock:
  ready: from spawn to the {"status": "ready"} line on stdout;
  stop:  from SIGTERM (to the process group, as berth sends it) to the exit
         of every process of the group.
Variants: the interpreter running backend.py (the reference every ratio is
against), the onefile build (python/dist/backend) and the onedir build
(python/dist/onedir/backend/backend) when present. Run it through
benches/python_ready.sh, which builds both first.

    python benches/python_ready.py [RUNS]
"""

from __future__ import annotations

import errno
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_DIR = ROOT / "python"
EXE = "backend.exe" if os.name == "nt" else "backend"
VARIANTS = [
    ("interpreter", [sys.executable, str(PYTHON_DIR / "backend.py")]),
    ("onefile", [str(PYTHON_DIR / "dist" / EXE)]),
    ("onedir", [str(PYTHON_DIR / "dist" / "onedir" / "backend" / EXE)]),
]
DEADLINE_S = 30.0


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except OSError as err:
        return err.errno == errno.ESRCH
    return False


def one_run(argv: list) -> tuple:
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv + ["--port", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            if json.loads(raw).get("status") == "ready":
                break
        else:
            raise RuntimeError(f"{argv[0]}: exited before ready")
        ready = time.perf_counter() - start
        stop_start = time.perf_counter()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=DEADLINE_S)
        while not group_gone(proc.pid):
            if time.perf_counter() - stop_start > DEADLINE_S:
                raise RuntimeError(f"{argv[0]}: group still alive")
            time.sleep(0.001)
        stop = time.perf_counter() - stop_start
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]}: exit status {proc.returncode}")
        return ready, stop
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    results = {}
    for name, argv in VARIANTS:
        if not Path(argv[0]).exists():
            print(f"{name:12} not built ({argv[0]}): skipped")
            continue
        one_run(argv)  # warm-up: page cache, first _MEI extraction
        samples = [one_run(argv) for _ in range(runs)]
        results[name] = (
            statistics.median(s[0] for s in samples),
            statistics.median(s[1] for s in samples),
        )
    ref_ready, ref_stop = results["interpreter"]
    print(f"python backend, median of {runs} runs after one warm-up")
    print(f"{'variant':12} {'ready ms':>9} {'x interp':>9} {'stop ms':>8} {'x interp':>9}")
    for name, (ready, stop) in results.items():
        print(
            f"{name:12} {ready * 1000:9.1f} {ready / ref_ready:9.2f} "
            f"{stop * 1000:8.1f} {stop / ref_stop:9.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
