#!/usr/bin/env python3
"""Camera tracking: Blender's default pipeline (detect_features with its defaults, track_markers forwards,
solve_camera with keyframes 1 and 30) against ours (blender_mediaidx.tracking.solver.track_plate), in one run
on the same generated plates with known cameras.

Reports per plate and pipeline: solved or why not, reprojection error (px), camera-path error after a
similarity alignment to the truth (max over frames, % of path length), focal length found, seconds.

    python bench/bench_tracking.py [--frames 48] [--plates hero,witness,slow-start,hero@1920x1080]

A plate is KIND[@WxH]; the focal length scales with the width (520 px at 640). At 640x360 Blender's defaults
find too few features to solve; at 1920x1080 they find enough, which is where the time ratio means something.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.synth_tracking import make_plate, similarity_error


def measure(truth, fn) -> dict:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    clip = bpy.data.movieclips.load(truth.pattern)
    clip.tracking.camera.sensor_width = truth.sensor_width_mm
    res = fn(clip)
    row = {"ok": res.ok, "error_px": res.error_px, "seconds": res.seconds, "focal_px": res.focal_px,
           "reason": res.reason, "path_err_pct": None, "strategy": res.strategy}
    if res.ok:
        cams = {c.frame: np.array(c.matrix) for c in clip.tracking.reconstruction.cameras}
        frames = sorted(cams)
        solved = np.array([cams[f] for f in frames])
        err, _ = similarity_error(solved, np.array(truth.matrices)[[f - 1 for f in frames]])
        row["path_err_pct"] = 100 * float(err.max())
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--plates", default="hero,witness,slow-start,hero@1920x1080")
    args = ap.parse_args()
    from blender_mediaidx.tracking import solver

    print(f"{'plate':<17} {'pipeline':<16} {'solved':<7} {'reproj px':>9} {'path err %':>10} {'focal px':>9} "
          f"{'seconds':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for plate in args.plates.split(","):
            kind, _, size = plate.partition("@")
            w, h = (int(v) for v in (size or "640x360").split("x"))
            truth = make_plate(Path(tmp) / plate, kind=kind, frames=args.frames, width=w, height=h,
                               focal_px=520.0 * w / 640)
            kind = plate
            rows = {
                "blender-default": measure(truth, solver.default_pipeline),
                "mediaidx": measure(truth, lambda clip, t=truth: solver.track_plate(clip, focal_px=t.focal_px * 1.15)),
            }
            for name, r in rows.items():
                fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
                print(f"{kind:<17} {name:<16} {('yes' if r['ok'] else 'NO'):<7} {fmt(r['error_px'], '9.3f')} "
                      f"{fmt(r['path_err_pct'], '10.3f')} {fmt(r['focal_px'], '9.1f')} {r['seconds']:8.2f}"
                      + ("" if r["ok"] else f"   ({r['reason'][:90]})"))
            d, o = rows["blender-default"], rows["mediaidx"]
            print(f"{kind:<17} time ratio ours/default: {o['seconds'] / d['seconds']:.2f}x (focal truth "
                  f"{truth.focal_px:.0f} px, ours seeded 15% off)")


if __name__ == "__main__":
    main()
