"""Review fixes checked against real bpy: the tracking worker's clip agrees with the dry run (EXR overscan, a
sequence given by a later frame, Cineon plates our probe cannot read), reruns leave only what shot.json lists
(no .blend1 backups, no exports of an earlier run), plates fetched through the bridge keep the Numbered Images
choice and the pixel aspect given, and the importer's note on numbered neighbours counts and reasons right."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bridge import MediaIndexer, synth
from bridge.synth_tracking import CameraTruth, make_plate

bpy = pytest.importorskip("bpy")

FRAMES = 48
SESSION = "blender-review-session"


def _exr_writer():
    """tests/test_track_review_fixes.write_exr (one EXR writer for both test files)."""
    path = Path(__file__).resolve().parents[1] / "test_track_review_fixes.py"
    spec = importlib.util.spec_from_file_location("_track_review_exr", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.write_exr


@pytest.fixture(scope="module")
def plates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CameraTruth]:
    folder = tmp_path_factory.mktemp("plates")
    return {"hero": make_plate(folder / "hero", "hero", frames=FRAMES),
            "witness": make_plate(folder / "witness", "witness", frames=FRAMES)}


def test_the_clip_of_an_overscan_exr_has_the_size_the_plan_names(extension: str, tmp_path: Path) -> None:
    from blender_mediaidx.tracking import export
    from blender_mediaidx.tracking.plan import chan_name
    from blender_mediaidx.tracking.shot import CameraSpec, load_clip
    from bridge.track import plan_track

    write_exr = _exr_writer()
    for n in (1, 2, 3):
        write_exr(tmp_path / f"over.{n:04d}.exr", (-16, -6, 79, 41), (0, 0, 63, 35))
    plate = str(tmp_path / "over.0001.exr")
    planned = Path(plan_track(plate, tmp_path / "out", formats="chan")[0].path).name
    bpy.ops.wm.read_homefile(use_empty=True)
    clip = load_clip(CameraSpec(path=plate, role="hero"))
    assert tuple(clip.size) == (96, 48)
    assert chan_name("hero", clip.tracking.camera.sensor_width, export.sensor_height_mm(clip)) == planned


def test_a_sequence_given_by_a_later_frame_starts_at_its_first_image(extension: str, tmp_path: Path) -> None:
    """plate.0002 of 0001-0003: the clip used to load 0002 but start at frame 1, so scene frame 1 showed image
    0002 and plate.json and every camera were a frame off."""
    from blender_mediaidx.tracking import export
    from blender_mediaidx.tracking.shot import CameraSpec, load_clip

    for n in (1, 2, 3):
        Image.fromarray(np.full((36, 64, 3), 40 * n, np.uint8)).save(tmp_path / f"plate.{n:04d}.png")
    bpy.ops.wm.read_homefile(use_empty=True)
    clip = load_clip(CameraSpec(path=str(tmp_path / "plate.0002.png"), role="hero"))
    plate = export.plate_info(clip, bpy.context.scene)
    first_image = int(Path(bpy.path.abspath(clip.filepath)).stem.split(".")[-1])
    assert plate["first_frame"] == first_image == 1
    assert (plate["first_frame"], plate["last_frame"]) == (1, 3) and clip.frame_duration == 3


def test_a_cineon_plate_our_probe_cannot_read_is_planned_and_tracked(extension: str, plates: dict[str, CameraTruth],
                                                                     tmp_path: Path) -> None:
    """The probe (FFmpeg) cannot read Cineon, Blender can: the run used to refuse it ("Blender cannot read it")."""
    from bridge.track import plan_track, run_track

    folder = tmp_path / "cin"
    folder.mkdir()
    scene = bpy.context.scene
    scene.render.image_settings.file_format = "CINEON"
    for n in range(1, FRAMES + 1):
        img = bpy.data.images.load(str(Path(plates["hero"].pattern).with_name(f"hero.{n:04d}.png")))
        img.save_render(str(folder / f"hero.{n:04d}.cin"), scene=scene)
        bpy.data.images.remove(img)
    plate = str(folder / "hero.0001.cin")
    plan = plan_track(plate, tmp_path / "out", formats="chan,csv")
    chan = plan[0]
    assert Path(chan.path).name == "hero_ZXY_35x?.chan"
    assert "our probe (FFmpeg) cannot read hero.0001.cin" in (chan.reason or "")
    assert "Blender cannot" not in (chan.reason or "")
    summary = run_track(plate, tmp_path / "out", formats="chan,csv", focal_px=520.0 * 1.15)
    assert not summary["failed"], summary
    written = {p.name for p in (tmp_path / "out").iterdir()}
    # Everything as planned, the .chan with the filmback Blender's 640x360 gives.
    assert written == {Path(p.path).name for p in plan[1:]} | {"hero_ZXY_35x19.7.chan"}


def test_a_rerun_leaves_only_what_its_shot_json_lists(extension: str, plates: dict[str, CameraTruth],
                                                      tmp_path: Path) -> None:
    """First hero + witness on a 36 mm back, then the hero alone on 35 mm, both with --save-blend: the rerun
    removes the witness's files and the old .chan (the dry run lists them as `remove`), keeps a file of the
    artist's, and leaves no shot.blend1."""
    from bridge.track import plan_track, run_track

    out = tmp_path / "shot"
    hero, witness = plates["hero"].pattern, plates["witness"].pattern
    first = run_track(hero, out, witnesses=[witness], sensor_width=36.0, formats="chan,csv", save_blend=True)
    assert len(first["built"]) == 2, first
    assert {"witness1_2d.csv", "hero_ZXY_36x20.2.chan"} <= {p.name for p in out.iterdir()}
    (out / "notes.txt").write_text("the artist's")

    plan = plan_track(hero, out, sensor_width=35.0, formats="chan,csv", save_blend=True)
    removes = {Path(p.path).name for p in plan if p.action == "remove"}
    assert removes == {"hero_ZXY_36x20.2.chan", "witness1_ZXY_36x20.2.chan", "witness1_2d.csv",
                       "witness1_lens.json", "witness1_plate.json"}
    writes = {Path(p.path).name for p in plan if p.action == "write"}

    second = run_track(hero, out, sensor_width=35.0, formats="chan,csv", save_blend=True)
    assert not second["failed"] and set(second["removed"]) == removes
    assert {p.name for p in out.iterdir()} == writes | {"notes.txt"}  # no shot.blend1, nothing of the witness
    listed = {f for c in json.loads((out / "shot.json").read_text())["cameras"] for f in c["files"].values()}
    assert listed | {"shot.json", "shot.blend"} == writes


def test_saving_a_blend_twice_keeps_no_backup(extension: str, tmp_path: Path) -> None:
    """`mediaidx blend` and `track --save-blend` save through batch.save_blend: a rerun left NAME.blend1."""
    from blender_mediaidx.batch import save_blend

    versions = bpy.context.preferences.filepaths.save_version
    bpy.ops.wm.read_homefile(use_empty=True)
    for _ in range(2):
        save_blend(tmp_path / "sh010_1.blend")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sh010_1.blend"]
    assert bpy.context.preferences.filepaths.save_version == versions  # the preference is left as it was


@pytest.fixture
def served(tmp_path: Path, bridge_process):
    root = tmp_path / "nas"
    root.mkdir()
    synth.make_video(root / "sh020.mp4", fps=25, frames=10, width=320, height=180)
    for n in (1, 2):
        synth.make_image(root / f"ref.{n:04d}.png", width=64, height=48)
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(root)
        ids = {a.name: a.id for a in ix.search(limit=10)}
    return bridge_process(cat, cache), ids


@pytest.fixture
def link_mod(extension: str, clean_scene, served, tmp_path: Path):
    bridge, _ids = served
    prefs = bpy.context.preferences.addons[extension].preferences
    prefs.bridge_address = bridge.endpoint
    prefs.session_name = SESSION
    prefs.cache_dir = str(tmp_path / "blender-cache")
    mod = sys.modules[f"{extension}.bridge_link"]
    mod.disconnect()
    yield mod
    mod.disconnect()


def test_a_fetched_plate_keeps_the_pixel_aspect_and_the_numbered_images_choice(link_mod, served,
                                                                               tmp_path: Path) -> None:
    _bridge, ids = served
    lk = link_mod.link()
    assert link_mod.wait(lambda: bpy.context.window_manager.mediaidx.connection == "connected", 10)
    result = bpy.ops.mediaidx.import_plate(asset_id=ids["sh020.mp4"], mode="clip", force_fetch=True, timeout=60,
                                           pixel_aspect=2.0)
    assert result == {"FINISHED"}
    (clip,) = bpy.data.movieclips
    assert Path(bpy.path.abspath(clip.filepath)).is_relative_to(tmp_path / "blender-cache")  # it was fetched
    assert clip.tracking.camera.pixel_aspect == pytest.approx(2.0)
    assert bpy.context.scene.render.pixel_aspect_x == pytest.approx(2.0)
    assert any("pixel aspect 2 as given" in n for n in lk.received[-1]["notes"])  # reported, not dropped

    # Image Sequence on a still that comes through the bridge alone: refused before anything is fetched.
    with pytest.raises(RuntimeError, match="only this one file comes through the bridge"):
        bpy.ops.mediaidx.import_plate(asset_id=ids["ref.0001.png"], mode="clip", force_fetch=True, timeout=60,
                                      sequence="sequence")
    assert len(bpy.data.movieclips) == 1
    assert not [p for p in (tmp_path / "blender-cache").rglob("*.png")]


@pytest.mark.parametrize(("names", "reason"), [
    (("render_0001.jpg", "render_0002.jpg"), "is not named like a plate (name.0001.ext)"),
    (("0001.jpg", "0002.jpg", "0003.jpg"), "are not named like a plate (name.0001.ext)"),
    (("IMG_0001.PNG", "IMG_0002.PNG"), "is named like camera photos"),
])
def test_the_single_image_note_counts_neighbours_and_gives_the_reason(extension: str, clean_scene, tmp_path: Path,
                                                                    names: tuple[str, ...], reason: str) -> None:
    from importlib import import_module

    importer = import_module(f"{extension}.importer")
    for name in names:
        Image.new("RGB", (32, 24), (90, 90, 90)).save(tmp_path / name)
    result = importer.import_asset(importer.local_asset(str(tmp_path / names[0])), "clip")
    others = len(names) - 1
    (note,) = [n for n in result.notes if n.startswith("imported as one image")]
    assert f"its {others} numbered neighbour{'s' if others > 1 else ''} {reason}" in note, note
