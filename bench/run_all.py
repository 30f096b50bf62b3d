#!/usr/bin/env python3
"""`make bench`: every benchmark in turn (they print ratios against their anchors; paste into
docs/benchmarks.md). Heavy variants (1,000,000 files) are run by hand: see each script's --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    ["bench_probe.py"],
    ["bench_scan.py"],
    ["bench_scan.py", "--sidecars"],
    ["bench_remote.py"],
    ["bench_api.py"],
    ["bench_shots.py"],
    ["bench_sync.py"],
]

if __name__ == "__main__":
    for cmd in SCRIPTS:
        print(f"\n=== {' '.join(cmd)} ===", flush=True)
        subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]], check=True)
