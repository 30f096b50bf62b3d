"""Benchmark: shot detection, ours (bridge.analysis.detect_shots) against PySceneDetect's default
ContentDetector (``scenedetect.detect(path, ContentDetector())``), on the same files in the same run.

Run:  .venv/bin/python bench/bench_shots.py [--corpus DIR] [--seconds 120] [--repeat 2] [--json OUT]

Files: the corpus ``video/shots`` clips (cut times from the MANIFEST notes) and two generated clips with
known hard cuts (ffmpeg test sources, 1280x720 and 1920x1080 H.264, ``--seconds`` long each; cached in
``--work``). Each tool runs ``--repeat`` times per file, interleaved, and keeps its best wall time, so a
busy machine hurts neither side more. Speed is seconds of video per wall-clock second; F1 counts a
boundary as found within 2 frames of the truth (the same rule for both). CPU seconds (all threads) are
shown too: on a loaded machine they say more than wall time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bridge.analysis import detect_shots  # noqa: E402
from bridge.analysis.synthclips import FAST_SOURCES, make_clip, varied_segments  # noqa: E402

DEFAULT_CORPUS = Path(os.environ.get("MEDIAIDX_CORPUS", REPO.parent / "shared" / "corpus"))
TOL_FRAMES = 2


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def f1_counts(found: list[float], truth: list[float], tol: float) -> tuple[int, int, int]:
    left = sorted(found)
    tp = 0
    for t in truth:
        hit = min(left, key=lambda x: abs(x - t), default=None)
        if hit is not None and abs(hit - t) <= tol:
            tp += 1
            left.remove(hit)
    return tp, len(left), len(truth) - tp


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def ours(path: Path) -> tuple[list[float], float, float]:
    r = detect_shots(path)
    at = dict(zip(r.stats.index, r.stats.time, strict=True))
    return [at.get(b.frame, b.frame / r.info.fps) for b in r.boundaries], r.frames / r.info.fps, r.info.fps


def pyscenedetect(path: Path) -> list[float]:
    from scenedetect import ContentDetector, detect

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scenes = detect(str(path), ContentDetector())
    # FrameTimecode.seconds is a property from 0.7 on; get_seconds() before that.
    return [s[0].seconds if hasattr(type(s[0]), "seconds") else s[0].get_seconds() for s in scenes[1:]]


def corpus_files(corpus: Path) -> list[tuple[Path, list[float]]]:
    manifest = corpus / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    out = []
    with open(manifest, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["path"].startswith("video/shots/"):
                m = re.search(r"near ([\d.,\s]+) s", row["notes"])
                if m:
                    out.append((corpus / row["path"], [float(x) for x in m.group(1).replace(" ", "").split(",") if x]))
    return out


def generated_files(work: Path, seconds: float) -> list[tuple[Path, list[float]]]:
    work.mkdir(parents=True, exist_ok=True)
    out = []
    for name, (w, h), seed in (("cuts_720p", (1280, 720), 7), ("cuts_1080p", (1920, 1080), 11)):
        segs = []
        total = 0
        for s in varied_segments(400, seed=seed, sources=FAST_SOURCES, fades=False, dissolves=False):
            if total >= seconds * 25:
                break
            segs.append(s)
            total += s.frames
        path = work / f"{name}_{int(seconds)}s.mp4"
        truth_file = path.with_suffix(".json")
        if path.is_file() and truth_file.is_file():
            truth = json.loads(truth_file.read_text())
        else:
            print(f"generating {path.name} ({w}x{h}, {total / 25:.0f} s) ...", file=sys.stderr, flush=True)
            truth = [b.frame / 25 for b in make_clip(path, segs, width=w, height=h, fps=25, preset="veryfast")]
            truth_file.write_text(json.dumps(truth))
        out.append((path, truth))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "mediaidx-bench-shots")
    ap.add_argument("--seconds", type=float, default=120.0, help="length of each generated clip")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-generated", action="store_true", help="only the corpus clips")
    ap.add_argument("--json", type=Path, help="write the per-file figures here")
    args = ap.parse_args(argv)

    try:
        import scenedetect  # noqa: F401
        have_psd = True
    except ImportError:
        have_psd = False
        print("scenedetect not installed (make bench installs it with --no-deps): ours only", file=sys.stderr)

    files = corpus_files(args.corpus) + ([] if args.no_generated else generated_files(args.work, args.seconds))
    if not files:
        print("no files: no corpus and --no-generated", file=sys.stderr)
        return 2
    detect_shots(files[0][0])  # warm-up: imports and codec initialisation are once per process
    rows = []
    for path, truth in files:
        best = {"ours": (float("inf"), 0.0), "psd": (float("inf"), 0.0)}
        found: dict[str, list[float]] = {}
        duration, fps = 0.0, 25.0
        for _ in range(args.repeat):
            for tool in ("ours", "psd") if have_psd else ("ours",):
                c0, t0 = cpu_seconds(), time.perf_counter()
                if tool == "ours":
                    found[tool], duration, fps = ours(path)
                else:
                    found[tool] = pyscenedetect(path)
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                if wall < best[tool][0]:
                    best[tool] = (wall, cpu)
        row = {"file": path.name, "duration": round(duration, 2), "cuts": len(truth)}
        for tool, res in found.items():
            tp, fp, fn = f1_counts(res, truth, TOL_FRAMES / fps)
            row[tool] = {"f1": round(f1(tp, fp, fn), 4), "tp": tp, "fp": fp, "fn": fn,
                         "wall": round(best[tool][0], 3), "cpu": round(best[tool][1], 3),
                         "speed": round(duration / best[tool][0], 2)}
        rows.append(row)

    print(f"{'file':28} {'video s':>7} {'cuts':>4}  {'F1 ours':>7} {'F1 PSD':>7}  {'ours x':>7} {'PSD x':>7} "
          f"{'ratio':>6}  {'cpu ours':>8} {'cpu PSD':>8}")
    for r in rows:
        o, p = r["ours"], r.get("psd")
        print(f"{r['file']:28} {r['duration']:7.1f} {r['cuts']:4d}  {o['f1']:7.3f} "
              f"{p['f1'] if p else float('nan'):7.3f}  {o['speed']:7.1f} {p['speed'] if p else float('nan'):7.1f} "
              f"{(p['wall'] / o['wall']) if p else float('nan'):5.2f}x  {o['cpu']:8.2f} "
              f"{p['cpu'] if p else float('nan'):8.2f}")
    summary: dict[str, float] = {}
    video = sum(r["duration"] for r in rows)
    for tool in ("ours", "psd") if have_psd else ("ours",):
        tp = sum(r[tool]["tp"] for r in rows)
        fp = sum(r[tool]["fp"] for r in rows)
        fn = sum(r[tool]["fn"] for r in rows)
        summary[f"{tool}_f1"] = round(f1(tp, fp, fn), 4)
        summary[f"{tool}_speed"] = round(video / sum(r[tool]["wall"] for r in rows), 2)
        summary[f"{tool}_cpu"] = round(sum(r[tool]["cpu"] for r in rows), 2)
    print(f"\nall {len(rows)} files, {video:.0f} s of video, best of {args.repeat}, {os.cpu_count()} CPUs")
    print(f"ours: F1 {summary['ours_f1']:.3f}, {summary['ours_speed']:.1f} video-s per wall-s, "
          f"{summary['ours_cpu']:.1f} CPU-s")
    if have_psd:
        print(f"PySceneDetect ContentDetector: F1 {summary['psd_f1']:.3f}, {summary['psd_speed']:.1f} video-s per "
              f"wall-s, {summary['psd_cpu']:.1f} CPU-s")
        summary["ratio"] = round(summary["ours_speed"] / summary["psd_speed"], 2)
        summary["cpu_ratio"] = round(summary["psd_cpu"] / summary["ours_cpu"], 2)
        print(f"speed-up: {summary['ratio']:.2f}x wall, {summary['cpu_ratio']:.2f}x CPU")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "files": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
