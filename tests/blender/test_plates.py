"""Plate import in real Blender (bpy 5.0.1): each mode, exact scene fps, range, resolution, colour space."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import bpy
import numpy as np
import pytest
from PIL import Image

from bridge import synth

RATES = [(Fraction(24000, 1001), 48), (Fraction(25), 50), (Fraction(30000, 1001), 60)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[Fraction, Path]:
    d = tmp_path_factory.mktemp("plates")
    return {rate: synth.make_video(d / f"plate_{float(rate):.3f}.mov", fps=rate, frames=n, width=320, height=180,
                                   audio=synth.tone()) for rate, n in RATES}


def colourspaces() -> set[str]:
    items = bpy.types.ColorManagedInputColorspaceSettings.bl_rna.properties["name"].enum_items
    return {i.identifier for i in items}


def check_scene(scene: bpy.types.Scene, rate: Fraction, frames: int, start: int = 1) -> None:
    assert Fraction(scene.render.fps) / Fraction(scene.render.fps_base).limit_denominator(10**6) == rate
    assert scene.render.fps == rate.numerator  # 24000/1001 -> fps 24000, fps_base 1001
    assert scene.render.fps_base == float(rate.denominator)
    assert (scene.frame_start, scene.frame_end) == (start, start + frames - 1)
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage) == (320, 180,
                                                                                                           100)


@pytest.mark.parametrize(("rate", "frames"), RATES)
@pytest.mark.parametrize("mode", ["clip", "camera-bg", "strip", "plane"])
def test_import_modes_set_the_scene(extension: str, clean_scene, clips, rate: Fraction, frames: int,
                                    mode: str) -> None:
    result = bpy.ops.mediaidx.import_plate(filepath=str(clips[rate]), mode=mode)
    assert result == {"FINISHED"}
    scene = bpy.context.scene
    check_scene(scene, rate, frames)
    if mode in ("clip", "camera-bg"):
        (clip,) = bpy.data.movieclips
        assert clip.frame_start == 1 and clip.frame_duration == frames
        assert clip.colorspace_settings.name in colourspaces()
        assert abs(clip.fps - float(rate)) < 0.01
    if mode == "camera-bg":
        bg = scene.camera.data.background_images[0]
        assert bg.source == "MOVIE_CLIP" and bg.clip == bpy.data.movieclips[0]
        assert scene.camera.data.show_background_images
    if mode == "strip":
        strips = {s.type: s for s in scene.sequence_editor.strips_all}
        assert set(strips) == {"MOVIE", "SOUND"}  # the plate has audio
        movie = strips["MOVIE"]
        assert movie.frame_final_start == 1 and movie.frame_final_duration == frames
        assert movie.colorspace_settings.name in colourspaces()
    if mode == "plane":
        (obj,) = [o for o in scene.objects if o.type == "MESH"]
        xs = [v.co.x for v in obj.data.vertices]
        ys = [v.co.y for v in obj.data.vertices]
        assert abs((max(xs) - min(xs)) / (max(ys) - min(ys)) - 320 / 180) < 1e-5
        tex = next(n for n in obj.active_material.node_tree.nodes if n.type == "TEX_IMAGE")
        assert tex.image.source == "MOVIE" and tex.image_user.frame_duration == frames


def test_vfx_start_frame(extension: str, clean_scene, clips) -> None:
    rate, frames = RATES[0]
    assert bpy.ops.mediaidx.import_plate(filepath=str(clips[rate]), mode="clip", start_frame=1001) == {"FINISHED"}
    check_scene(bpy.context.scene, rate, frames, start=1001)
    assert bpy.data.movieclips[0].frame_start == 1001


@pytest.fixture(scope="module")
def png_sequence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("seq")
    for f in range(1001, 1011):
        arr = np.full((90, 160, 3), (f - 1000) * 20, np.uint8)
        Image.fromarray(arr).save(d / f"plate.{f}.png")
    return d


@pytest.mark.parametrize("mode", ["clip", "strip"])
def test_image_sequence(extension: str, clean_scene, png_sequence: Path, mode: str) -> None:
    assert bpy.ops.mediaidx.import_plate(filepath=str(png_sequence / "plate.1004.png"), mode=mode) == {"FINISHED"}
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, 10)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (160, 90)
    if mode == "clip":
        clip = bpy.data.movieclips[0]
        assert clip.source == "SEQUENCE" and clip.frame_duration == 10
    else:
        (strip,) = scene.sequence_editor.strips_all
        assert strip.type == "IMAGE" and len(strip.elements) == 10 and strip.frame_final_duration == 10


def test_bad_input_is_reported_not_raised(extension: str, clean_scene, tmp_path: Path) -> None:
    (tmp_path / "notes.mov").write_text("not a video")
    with pytest.raises(RuntimeError, match=r"not|cannot|read"):
        bpy.ops.mediaidx.import_plate(filepath=str(tmp_path / "notes.mov"), mode="clip")
    with pytest.raises(RuntimeError, match="not readable"):
        bpy.ops.mediaidx.import_plate(filepath=str(tmp_path / "missing.mov"), mode="strip")
    assert len(bpy.data.movieclips) == 0
