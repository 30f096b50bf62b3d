"""Second review, against real bpy: the tracking worker's clip of a plate given after a gap holds the frames
asked for (and starts at their number), a frame number set off by a dot imports as a sequence whatever the name
before it, and a pixel aspect typed for one plate does not stick to the next import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

bpy = pytest.importorskip("bpy")


def frames(folder: Path, stem: str, numbers: tuple[int, ...]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        Image.fromarray(np.full((36, 64, 3), 10 * n % 255, np.uint8)).save(folder / f"{stem}.{n:04d}.png")
    return folder


def test_the_worker_tracks_the_run_of_frames_the_given_one_is_in(extension: str, tmp_path: Path) -> None:
    """plate.0001-0003 and 0010-0013, plate.0011 given: the worker loaded plate.0001, whose clip stops at the gap,
    so the frames asked for were never tracked."""
    from blender_mediaidx.tracking import export
    from blender_mediaidx.tracking.plan import clip_first_image
    from blender_mediaidx.tracking.shot import CameraSpec, load_clip

    d = frames(tmp_path, "plate", (1, 2, 3, 10, 11, 12, 13))
    bpy.ops.wm.read_homefile(use_empty=True)
    clip = load_clip(CameraSpec(path=str(d / "plate.0011.png"), role="hero"))
    loaded = Path(bpy.path.abspath(clip.filepath))
    assert loaded.name == "plate.0010.png" == Path(clip_first_image(str(d / "plate.0011.png"))).name
    assert clip.frame_start == 10 and clip.frame_duration == 4
    plate = export.plate_info(clip, bpy.context.scene)
    assert (plate["first_frame"], plate["last_frame"]) == (10, 13)


@pytest.mark.parametrize("stem", ["DJI_0001_plate", "IMG_plate", "img"])
def test_a_dotted_frame_number_imports_as_a_sequence_whatever_the_name(extension: str, clean_scene,
                                                                       tmp_path: Path, stem: str) -> None:
    d = frames(tmp_path, stem, (1001, 1002, 1003))
    assert bpy.ops.mediaidx.import_plate(filepath=str(d / f"{stem}.1001.png"), mode="clip") == {"FINISHED"}
    scene = bpy.context.scene
    assert scene.frame_end - scene.frame_start + 1 == 3  # the three frames, not one image


def test_a_pixel_aspect_given_to_one_import_does_not_stick_to_the_next(extension: str, clean_scene,
                                                                       tmp_path: Path) -> None:
    """Blender reuses an operator's last values: without SKIP_SAVE the next plate imported got the 2x squeeze."""
    d = frames(tmp_path, "sq", (1, 2, 3))
    plate = str(d / "sq.0001.png")
    assert bpy.ops.mediaidx.import_plate(filepath=plate, mode="clip", pixel_aspect=2.0) == {"FINISHED"}
    assert bpy.context.scene.render.pixel_aspect_x == 2.0
    bpy.ops.wm.read_homefile(use_empty=True)
    assert bpy.ops.mediaidx.import_plate(filepath=plate, mode="clip") == {"FINISHED"}
    r = bpy.context.scene.render
    assert (r.pixel_aspect_x, r.pixel_aspect_y) == (1.0, 1.0)
    for op in (bpy.ops.mediaidx.import_plate, bpy.ops.mediaidx.import_selected):
        assert op.get_rna_type().properties["pixel_aspect"].is_skip_save


def test_the_panel_s_pixel_aspect_belongs_to_the_result_it_was_typed_for(extension: str) -> None:
    st = bpy.context.window_manager.mediaidx
    st.results.clear()
    for asset_id in (5, 9):
        st.results.add().asset_id = asset_id
    st.active = 0
    st.import_pixel_aspect = 2.0
    assert st.import_pixel_aspect_for == 5
    st.active = 1  # another plate selected: its own metadata, not the squeeze typed for asset 5
    assert st.import_pixel_aspect == 0.0
    st.import_pixel_aspect = 1.5
    assert st.import_pixel_aspect_for == 9
    st.active = 1  # the same result again keeps it
    assert st.import_pixel_aspect == 1.5
    st.results.clear()
    st.import_pixel_aspect = 0.0
