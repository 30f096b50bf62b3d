"""A photo is imported as that photo, a plate as its sequence (real bpy 5.0.1, real JPEG/PNG files): the
import's Numbered Images choice (auto / single / sequence) and its auto rule."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """IMG_0001.JPG and IMG_0002.JPG as a phone writes them (different pictures, same size)."""
    d = tmp_path / "DCIM"
    d.mkdir()
    for n in (1, 2):
        arr = np.full((60, 80, 3), 60 * n, np.uint8)
        arr[:, : 10 * n] = 255
        Image.fromarray(arr).save(d / f"IMG_{n:04d}.JPG", quality=90)
    return d


@pytest.fixture
def png_plate(tmp_path: Path) -> Path:
    d = tmp_path / "plate"
    d.mkdir()
    for f in range(1001, 1004):
        Image.fromarray(np.full((36, 64, 3), (f - 1000) * 40, np.uint8)).save(d / f"plate.{f}.png")
    return d


@pytest.mark.parametrize("mode", ["clip", "strip", "plane"])
def test_a_photo_beside_the_next_one_imports_as_that_photo(extension: str, clean_scene, photos: Path,
                                                          mode: str) -> None:
    assert bpy.ops.mediaidx.import_plate(filepath=str(photos / "IMG_0002.JPG"), mode=mode) == {"FINISHED"}
    scene = bpy.context.scene
    assert scene.frame_end - scene.frame_start == 0  # one image: a one-frame scene, not frames 1..2
    assert (scene.render.resolution_x, scene.render.resolution_y) == (80, 60)
    if mode == "clip":
        (clip,) = bpy.data.movieclips
        assert Path(bpy.path.abspath(clip.filepath)).name == "IMG_0002.JPG" and clip.frame_duration == 1
    elif mode == "strip":
        (strip,) = scene.sequence_editor.strips_all
        assert strip.frame_final_duration == 1
    else:
        (img,) = bpy.data.images
        assert img.source == "FILE" and Path(img.filepath).name == "IMG_0002.JPG"


@pytest.mark.parametrize("mode", ["strip", "plane"])
def test_single_keeps_the_first_photo_alone_too(extension: str, clean_scene, photos: Path, mode: str) -> None:
    """IMG_0001 has a neighbour after it: auto and single still give that one photo."""
    for choice in ("auto", "single"):
        bpy.ops.wm.read_homefile(use_empty=True)
        assert bpy.ops.mediaidx.import_plate(filepath=str(photos / "IMG_0001.JPG"), mode=mode,
                                             sequence=choice) == {"FINISHED"}
        scene = bpy.context.scene
        assert scene.frame_end == scene.frame_start
        if mode == "strip":
            (strip,) = scene.sequence_editor.strips_all
            assert strip.frame_final_duration == 1
        else:
            (img,) = bpy.data.images
            assert img.source == "FILE"


@pytest.mark.parametrize("mode", ["clip", "strip", "plane"])
def test_the_same_photos_with_sequence_chosen_are_a_two_frame_sequence(extension: str, clean_scene, photos: Path,
                                                                      mode: str) -> None:
    assert bpy.ops.mediaidx.import_plate(filepath=str(photos / "IMG_0002.JPG"), mode=mode,
                                         sequence="sequence") == {"FINISHED"}
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, 2)
    if mode == "clip":
        (clip,) = bpy.data.movieclips
        assert clip.source == "SEQUENCE" and clip.frame_duration == 2
        assert Path(bpy.path.abspath(clip.filepath)).name == "IMG_0001.JPG"
    elif mode == "strip":
        (strip,) = scene.sequence_editor.strips_all
        assert strip.type == "IMAGE" and [e.filename for e in strip.elements] == ["IMG_0001.JPG", "IMG_0002.JPG"]
    else:
        (img,) = bpy.data.images
        assert img.source == "SEQUENCE"


def test_sequence_on_a_lone_photo_is_a_clear_error_and_changes_nothing(extension: str, clean_scene,
                                                                      tmp_path: Path) -> None:
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(tmp_path / "IMG_0007.JPG")
    scene = bpy.context.scene
    before = (scene.frame_start, scene.frame_end, scene.render.resolution_x)
    with pytest.raises(RuntimeError, match=r"IMG_0007\.JPG: not an image sequence .*import it as a single image"):
        bpy.ops.mediaidx.import_plate(filepath=str(tmp_path / "IMG_0007.JPG"), mode="clip", sequence="sequence")
    assert len(bpy.data.movieclips) == 0 and len(bpy.data.images) == 0
    assert (scene.frame_start, scene.frame_end, scene.render.resolution_x) == before


@pytest.mark.parametrize("mode", ["clip", "strip"])
def test_a_png_plate_is_still_a_sequence_on_auto(extension: str, clean_scene, png_plate: Path, mode: str) -> None:
    assert bpy.ops.mediaidx.import_plate(filepath=str(png_plate / "plate.1002.png"), mode=mode) == {"FINISHED"}
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, 3)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (64, 36)
    if mode == "clip":
        (clip,) = bpy.data.movieclips
        assert clip.source == "SEQUENCE" and clip.frame_duration == 3
    else:
        (strip,) = scene.sequence_editor.strips_all
        assert strip.type == "IMAGE" and len(strip.elements) == 3


def test_the_auto_decision_is_explained_and_the_batch_takes_the_choice(extension: str, clean_scene,
                                                                     photos: Path) -> None:
    from importlib import import_module

    importer = import_module(f"{extension}.importer")
    result = importer.import_asset(importer.local_asset(str(photos / "IMG_0001.JPG")), "clip")
    assert result.settings.frame_count == 1
    assert any("named like camera photos; choose Image Sequence" in n for n in result.notes)
    # Blender's own clip still reads IMG_0002 after IMG_0001: said, not hidden.
    assert any("also reads the 1 numbered image(s) after it" in n for n in result.notes)
    bpy.ops.wm.read_homefile(use_empty=True)
    result = importer.import_asset(importer.local_asset(str(photos / "IMG_0001.JPG"), "sequence"), "strip",
                                   sequence="sequence")
    assert result.settings.frame_count == 2 and not result.notes
    batch = import_module(f"{extension}.batch")
    assert batch.parse(["1", "--out", "x", "--sequence", "single"]).sequence == "single"
    assert batch.parse(["1", "--out", "x"]).sequence == "auto"
