"""Headless batch: one .blend per shot from catalog ids or a search, built by Blender without a UI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import bpy
import pytest

from bridge import MediaIndexer, synth

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shots(tmp_path: Path) -> tuple[Path, Path, dict[str, int]]:
    root = tmp_path / "nas"
    root.mkdir()
    synth.make_video(root / "sh010_v001.mov", fps=Fraction(24000, 1001), frames=24, width=320, height=180,
                     audio=synth.tone())
    synth.make_video(root / "sh020_v001.mov", fps=25, frames=25, width=256, height=144)
    (root / "sh030_broken.mov").write_text("not a video")
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(root)
        ids = {a.name: a.id for a in ix.search(limit=10, status=None)} | {
            a.name: a.id for a in ix.search(status="failed")}
    return cat, cache, ids


def env_for(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "batch-home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home)}


def test_batch_module_builds_one_blend_per_shot(shots, bridge_process, tmp_path: Path) -> None:
    cat, cache, ids = shots
    bridge = bridge_process(cat, cache)
    out = tmp_path / "blends"
    r = subprocess.run([sys.executable, "-m", "blender_mediaidx.batch", "--bridge", bridge.endpoint, "--query", "sh0",
                        "--out", str(out), "--start-frame", "1001"], capture_output=True, text=True, timeout=300,
                       env=env_for(tmp_path), cwd=REPO)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert sorted(b["asset"] for b in summary["built"]) == sorted([ids["sh010_v001.mov"], ids["sh020_v001.mov"]])
    blend = out / f"sh010_v001_{ids['sh010_v001.mov']}.blend"
    assert blend.is_file()
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene = bpy.context.scene
    assert (scene.render.fps, scene.render.fps_base) == (24000, 1001.0)
    assert (scene.frame_start, scene.frame_end) == (1001, 1024)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (320, 180)
    (clip,) = bpy.data.movieclips
    assert clip.frame_start == 1001 and clip.frame_duration == 24
    bpy.ops.wm.read_homefile(use_empty=True)


def test_batch_as_a_script_after_double_dash_reports_failures(shots, bridge_process, tmp_path: Path) -> None:
    """The `blender -b --python blender_mediaidx/batch.py -- ARGS` form: arguments after `--`."""
    cat, cache, ids = shots
    bridge = bridge_process(cat, cache)
    out = tmp_path / "blends"
    wanted = [ids["sh020_v001.mov"], ids["sh030_broken.mov"]]
    r = subprocess.run([sys.executable, str(REPO / "blender_mediaidx" / "batch.py"), "--", "--bridge", bridge.endpoint,
                        *map(str, wanted), "--out", str(out), "--mode", "strip"], capture_output=True, text=True,
                       timeout=300, env=env_for(tmp_path), cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert [b["asset"] for b in summary["built"]] == [ids["sh020_v001.mov"]]
    assert summary["built"][0]["fps"] == 25 and summary["built"][0]["frame_end"] == 25
    (failed,) = summary["failed"]
    assert failed["asset"] == ids["sh030_broken.mov"] and "not a media file" in failed["error"]


def test_mediaidx_blend_runs_workers_with_a_private_bridge(shots, tmp_path: Path) -> None:
    cat, cache, ids = shots
    out = tmp_path / "blends"
    cmd = [sys.executable, "-m", "bridge.cli.app", "--catalog", str(cat), "--cache-dir", str(cache),
           "blend", "sh0", "--out", str(out), "--workers", "2", "--json"]
    dry = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, timeout=120, env=env_for(tmp_path),
                         cwd=REPO)
    assert dry.returncode == 0 and not out.exists(), dry.stderr  # no Blender, nothing written
    planned = sorted(p["path"] for p in json.loads(dry.stdout)["plan"] if p["action"] == "write")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env_for(tmp_path), cwd=REPO)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert planned == sorted(b["blend"] for b in summary["built"])  # the dry run named exactly these files
    assert sorted(Path(b["blend"]).name for b in summary["built"]) == sorted(
        [f"sh010_v001_{ids['sh010_v001.mov']}.blend", f"sh020_v001_{ids['sh020_v001.mov']}.blend"])
    assert all(Path(b["blend"]).is_file() for b in summary["built"])


def test_a_batch_past_its_deadline_stops_its_workers(shots, tmp_path: Path) -> None:
    """One deadline for the whole batch; when it passes, the error says so and no Blender worker is left
    running (they would otherwise hold CPU and files on a farm node long after the command failed)."""
    from bridge.blend import build_blends
    from bridge.errors import MediaIdxError

    cat, cache, ids = shots
    out = tmp_path / "late-blends"
    with MediaIndexer(cat, cache_dir=cache) as ix, pytest.raises(MediaIdxError, match="did not finish"):
        build_blends(ix, sorted(ids.values()), out, workers=2, timeout=0.5)
    leftovers = []
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"blender_mediaidx.batch" in cmdline and str(out).encode() in cmdline:
            leftovers.append(pid)
    assert leftovers == []


def test_a_batch_reports_progress_shot_by_shot(shots, tmp_path: Path) -> None:
    """A batch of hundreds of shots runs for minutes: the CLI's progress bar advances as each worker finishes a
    shot, not once at the end (the workers' output is read as it comes)."""
    from bridge.blend import build_blends

    cat, cache, ids = shots
    events: list[tuple[float, str]] = []
    with MediaIndexer(cat, cache_dir=cache) as ix:
        summary = build_blends(ix, sorted(ids.values()), tmp_path / "progress-blends", workers=2,
                               progress=lambda f, m: events.append((f, m)))
    n = len(ids)
    assert len(summary["built"]) + len(summary["failed"]) == n
    assert [f for f, _ in events] == [pytest.approx(i / n) for i in range(1, n + 1)]
    assert events[-1][1] == f"{n}/{n} shots"
