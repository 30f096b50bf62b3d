"""Benchmark: in-process probe_file() against `ffprobe -show_format -show_streams -of json` per file.

Run:  .venv/bin/python bench/bench_probe.py [--corpus DIR] [--repeat 3] [--all] [--json OUT]

Each corpus video (or every corpus file with --all) is probed ``--repeat`` times by each side and the
best time is kept, so page-cache warm-up does not count against either. probe_file() includes the
audio silence check and the QuickTime box walk; ffprobe runs as the subprocess a scanner would start.
The first probe_file() call (imports, pillow-heif registration) is made before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bridge.probe import probe_file, summarize  # noqa: E402

DEFAULT_CORPUS = Path(os.environ.get("MEDIAIDX_CORPUS", REPO.parent / "shared" / "corpus"))


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--all", action="store_true", help="every corpus file, not only corpus/video")
    ap.add_argument("--json", type=Path, help="write the per-file timings here")
    args = ap.parse_args(argv)

    root = args.corpus / ("" if args.all else "video")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name not in ("MANIFEST.tsv", "README.md"))
    if not files:
        print(f"no files under {root}", file=sys.stderr)
        return 2
    ffprobe = shutil.which("ffprobe")
    probe_file(files[0])  # warm-up: imports and lazy registrations are a once-per-process cost

    rows = []
    for path in files:
        ours = best_of(lambda p=path: summarize(probe_file(p)), args.repeat)
        theirs = None
        if ffprobe:
            cmd = [ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
            theirs = best_of(lambda c=cmd: subprocess.run(c, capture_output=True, check=False), args.repeat)
        rows.append((path.relative_to(args.corpus).as_posix(), ours, theirs))

    width = max(len(r[0]) for r in rows)
    print(f"{'file':{width}}  {'ours ms':>8}  {'ffprobe ms':>10}  {'speed-up':>8}")
    for rel, ours, theirs in rows:
        ff = f"{theirs * 1000:10.2f}" if theirs is not None else f"{'-':>10}"
        ratio = f"{theirs / ours:7.1f}x" if theirs is not None else f"{'-':>8}"
        print(f"{rel:{width}}  {ours * 1000:8.2f}  {ff}  {ratio}")
    ours_all = [r[1] for r in rows]
    print(f"\n{len(rows)} files, best of {args.repeat}")
    print(f"probe_file: median {statistics.median(ours_all) * 1000:.2f} ms, mean {statistics.mean(ours_all) * 1000:.2f} ms")
    summary = {"files": len(rows), "ours_median_ms": statistics.median(ours_all) * 1000,
               "ours_mean_ms": statistics.mean(ours_all) * 1000}
    if ffprobe:
        ff_all = [r[2] for r in rows]
        med_ratio = statistics.median(ff_all) / statistics.median(ours_all)
        mean_ratio = statistics.mean(ff_all) / statistics.mean(ours_all)
        print(f"ffprobe:    median {statistics.median(ff_all) * 1000:.2f} ms, mean {statistics.mean(ff_all) * 1000:.2f} ms")
        print(f"speed-up:   {med_ratio:.1f}x on the median, {mean_ratio:.1f}x on the mean")
        summary.update(ffprobe_median_ms=statistics.median(ff_all) * 1000, ffprobe_mean_ms=statistics.mean(ff_all) * 1000,
                       ratio_median=med_ratio, ratio_mean=mean_ratio)
    else:
        print("ffprobe not on PATH: no comparison")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "files": [
            {"path": r[0], "ours_ms": r[1] * 1000, "ffprobe_ms": r[2] * 1000 if r[2] is not None else None}
            for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
