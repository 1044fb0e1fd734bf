"""Several processes creating one fresh cache at the same moment all get a usable cache (SQLite does not wait for
a lock during the switch to WAL: "database is locked" at once, seen when two `refine` runs started together)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

# each process imports first, then waits for the go file, so that all of them open the cache at one instant
OPEN = """
import os, sys, time
from longsift.llm.cache import Cache
open(sys.argv[2] + f".ready{os.getpid()}", "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.0005)
Cache(sys.argv[1]).close()
"""


def test_processes_creating_one_cache_at_once_all_open_it(tmp_path: Path) -> None:
    n = 8
    for round_ in range(6):
        path, go = tmp_path / f"fresh{round_}.sqlite", tmp_path / f"go{round_}"
        procs = [
            subprocess.Popen([sys.executable, "-c", OPEN, str(path), str(go)], stderr=subprocess.PIPE, text=True)
            for _ in range(n)
        ]
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob(f"go{round_}.ready*"))) < n:
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.01)
        go.touch()
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * n, errors
