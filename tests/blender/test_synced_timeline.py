"""Clips of one event laid out in the sequencer by their sound (bpy.ops.mediaidx.build_synced_timeline)."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from blender_mediaidx.core.synced import place
from bridge import synth

bpy = pytest.importorskip("bpy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_sync import babble, other_microphone, write  # noqa: E402


def test_placement_in_exact_frames() -> None:
    results = [{"path": "a", "status": "reference", "offset_seconds": 0.0},
               {"path": "b", "status": "synced", "offset_seconds": 2.5},
               {"path": "c", "status": "synced", "offset_seconds": -1.0},
               {"path": "d", "status": "unsynced", "offset_seconds": None, "reason": "no shared sound"}]
    placed, unsynced = place(results, Fraction(24000, 1001), start_frame=1001)
    frames = {p.path: p.frame_start for p in placed}
    # c starts first; a is 1 s later (23.976 frames -> 24), b 3.5 s later (83.9 -> 84)
    assert frames == {"c": 1001, "a": 1025, "b": 1085}
    assert [u["path"] for u in unsynced] == ["d"]
    assert len({p.channel for p in placed}) == 3


def test_operator_lays_out_synced_clips(extension: str, clean_scene, tmp_path: Path) -> None:
    rate = 48000
    src = babble(30, rate, seed=9)
    recorder = write(tmp_path / "recorder.wav", src, rate)
    cam = other_microphone(src, rate, 5.0, 12.0, rate, drift_ppm=0.0, snr_db=10.0, seed=3)
    times = np.arange(len(cam)) / rate
    video = synth.make_video(tmp_path / "cam_a.mp4", frames=12 * 25, fps=25, width=64, height=48,
                             audio=lambda t: np.interp(t, times, cam))
    unrelated = write(tmp_path / "other_day.wav", babble(15, rate, seed=99), rate)
    scene = clean_scene
    scene.render.fps, scene.render.fps_base = 25, 1.0
    result = bpy.ops.mediaidx.build_synced_timeline(files=";".join(map(str, (recorder, video, unrelated))))
    assert result == {"FINISHED"}
    strips = {s.name: s for s in scene.sequence_editor.strips_all}
    assert strips["cam_a.mp4"].frame_start - strips["recorder.wav audio"].frame_start == 125  # 5.0 s at 25 fps
    assert strips["cam_a.mp4 audio"].frame_start == strips["cam_a.mp4"].frame_start
    assert not any(name.startswith("other_day") for name in strips)  # no shared sound: left out

    # The same from `mediaidx sync --json` output passed as text.
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 25, 1.0
    from bridge.sync import sync_files

    doc = {"results": [r.as_dict() for r in sync_files([str(recorder), str(video)])]}
    assert bpy.ops.mediaidx.build_synced_timeline(results=json.dumps(doc)) == {"FINISHED"}
    starts = sorted(s.frame_start for s in scene.sequence_editor.strips_all)
    assert starts[0] == 1 and starts[-1] == 126
    with pytest.raises(RuntimeError, match="at least two files"):
        bpy.ops.mediaidx.build_synced_timeline(files=str(recorder))
