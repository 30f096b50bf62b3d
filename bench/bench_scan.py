#!/usr/bin/env python3
"""Scan speed and memory against `find ROOT -printf '%s %T@\\n'` on the same tree, in the same run.

    .venv/bin/python bench/bench_scan.py                    # 100,000 files
    .venv/bin/python bench/bench_scan.py --files 1000000    # the memory-flatness check (takes minutes)

Reports, for a metadata-only first index (`scan --no-probe`) and a rescan of the unchanged tree:
the scan call's own time (in a fresh process, best of --repeat), the whole `mediaidx scan` command's wall
time (interpreter start and imports included), the ratio of each to find's best time, and the peak RSS.
The tree is built once under --dir and reused (a marker file records its shape).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_tree(root: Path, files: int, per_folder: int, sidecars: bool) -> None:
    """reels/day/clip files of varied small sizes; with sidecars, camera-card clutter beside them."""
    marker = root / ".bench-tree"
    shape = f"{files} {per_folder} {sidecars}"
    if marker.exists() and marker.read_text() == shape:
        return
    if root.exists():
        shutil.rmtree(root)
    rng = random.Random(42)
    folders = (files + per_folder - 1) // per_folder
    made = 0
    for f in range(folders):
        d = root / f"day{f // 50:03d}" / f"reel{f % 50:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for _ in range(min(per_folder, files - made)):
            (d / f"C{made:07d}.MP4").write_bytes(b"\0" * rng.randint(1, 4000))
            if sidecars:
                (d / f"C{made:07d}M01.XML").write_bytes(b"<x/>")
                (d / f"C{made:07d}.THM").write_bytes(b"\0" * 16)
            made += 1
    marker.write_text(shape)


def time_find(root: Path, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(["find", str(root), "-printf", "%s %T@\\n"], stdout=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - t)
    return best


def child(catalog: str, root: str) -> None:
    """One scan in this fresh process; prints its own time and peak RSS as JSON."""
    from bridge import MediaIndexer

    with MediaIndexer(catalog, cache_dir=catalog + ".cache") as ix:
        t = time.perf_counter()
        s = ix.scan(root, probe=False)
        elapsed = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"elapsed": elapsed, "rss_kb": rss, "children_rss_kb": kids, **s.counts}))


def scan_in_process(catalog: Path, root: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(catalog), str(root)], capture_output=True,
                         text=True, check=True, cwd=REPO)
    return json.loads(out.stdout)


def scan_cli(catalog: Path, root: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bridge.cli.app", "--catalog", str(catalog), "scan", str(root),
                    "--no-probe", "--json"], stdout=subprocess.DEVNULL, check=True, cwd=REPO)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--per-folder", type=int, default=100)
    ap.add_argument("--sidecars", action="store_true", help="add camera-card XML/THM files beside each clip")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "mediaidx-bench")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    root = args.dir / f"tree-{args.files}-{args.per_folder}{'-sidecars' if args.sidecars else ''}"
    t = time.perf_counter()
    build_tree(root, args.files, args.per_folder, args.sidecars)
    print(f"tree {root}: {args.files} media files (built/checked in {time.perf_counter() - t:.1f} s)")
    time_find(root, 1)  # warm the cache for everyone
    find_s = time_find(root, args.repeat)
    print(f"find -printf:            {find_s:8.3f} s")

    first, cli_first = [], []
    for i in range(args.repeat):
        catalog = args.dir / f"bench-{i}.sqlite"
        for p in args.dir.glob(f"bench-{i}.sqlite*"):
            p.unlink() if p.is_file() else shutil.rmtree(p)
        first.append(scan_in_process(catalog, root))
    best_first = min(first, key=lambda r: r["elapsed"])
    assert best_first["added"] == args.files, best_first
    for i in range(args.repeat):
        catalog = args.dir / f"bench-cli-{i}.sqlite"
        for p in args.dir.glob(f"bench-cli-{i}.sqlite*"):
            p.unlink() if p.is_file() else shutil.rmtree(p)
        cli_first.append(scan_cli(catalog, root))

    catalog = args.dir / "bench-0.sqlite"
    scan_in_process(catalog, root)  # settle the WAL once
    rescans = [scan_in_process(catalog, root) for _ in range(args.repeat)]
    best_re = min(rescans, key=lambda r: r["elapsed"])
    assert best_re["unchanged"] == args.files, best_re
    cli_re = min(scan_cli(catalog, root) for _ in range(args.repeat))

    def line(name: str, sec: float, rss_kb: int | None = None) -> None:
        rss = f"   peak RSS {rss_kb / 1024:6.1f} MiB" if rss_kb else ""
        print(f"{name:24} {sec:8.3f} s   {sec / find_s:5.2f}x find{rss}")

    line("first index (scan call)", best_first["elapsed"], best_first["rss_kb"])
    line("first index (command)", min(cli_first))
    line("rescan (scan call)", best_re["elapsed"], best_re["rss_kb"])
    line("rescan (command)", cli_re)
    print(f"walker processes peak RSS {best_first['children_rss_kb'] / 1024:.1f} MiB; "
          f"catalog {catalog.stat().st_size / 1e6:.1f} MB; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
