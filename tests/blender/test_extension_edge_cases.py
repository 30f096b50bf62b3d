"""Edge cases a studio hits with the extension in real Blender (bpy 5.0.1): numbered movies that are not image
sequences, sequences with gaps, frames past the last solved camera, and batch jobs given bad options."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import bpy
import numpy as np
import pytest
from PIL import Image

from bridge import synth
from bridge.errors import MediaIdxError
from bridge.synth_tracking import make_plate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def numbered_takes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """take5.mov and take6.mov side by side: two movies whose names end in a number, as cameras name them."""
    d = tmp_path_factory.mktemp("takes")
    for n in (5, 6):
        synth.make_video(d / f"take{n}.mov", fps=Fraction(25), frames=20, width=160, height=90)
    return d


@pytest.mark.parametrize("mode", ["clip", "strip"])
def test_a_numbered_movie_beside_another_is_not_an_image_sequence(extension: str, clean_scene, numbered_takes: Path,
                                                                  mode: str) -> None:
    assert bpy.ops.mediaidx.import_plate(filepath=str(numbered_takes / "take5.mov"), mode=mode) == {"FINISHED"}
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, 20)  # the movie's 20 frames, not "frames 5..6"
    assert (scene.render.resolution_x, scene.render.resolution_y) == (160, 90)
    if mode == "clip":
        (clip,) = bpy.data.movieclips
        assert clip.source == "MOVIE" and clip.frame_duration == 20
    else:
        (strip,) = scene.sequence_editor.strips_all
        assert strip.type == "MOVIE" and strip.frame_final_duration == 20


def test_tracking_a_numbered_movie_starts_it_at_frame_1(extension: str, clean_scene, numbered_takes: Path) -> None:
    from importlib import import_module

    shot = import_module(f"{extension}.tracking.shot")
    clip = shot.load_clip(shot.CameraSpec(path=str(numbered_takes / "take6.mov"), role="hero"))
    assert clip.source == "MOVIE" and clip.frame_start == 1  # docs/tracking.md: "1 for a movie"


@pytest.fixture
def gappy_sequence(tmp_path: Path) -> Path:
    """sh 010#v2%.1001..1010.png (an odd name: spaces, '#', '%', unicode folder) with frame 1005 missing."""
    d = tmp_path / "plates #1 %d é"
    d.mkdir()
    for f in range(1001, 1011):
        if f != 1005:
            Image.fromarray(np.full((36, 64, 3), f - 1000, np.uint8)).save(d / f"sh 010#v2%.{f}.png")
    return d


def test_a_gap_in_a_sequence_strip_keeps_later_frames_in_place(extension: str, ext, clean_scene,
                                                               gappy_sequence: Path) -> None:
    from importlib import import_module

    importer = import_module(f"{extension}.importer")
    asset = importer.local_asset(str(gappy_sequence / "sh 010#v2%.1003.png"))
    result = importer.import_asset(asset, "strip", start_frame=1001)
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1001, 1010)
    (strip,) = scene.sequence_editor.strips_all
    assert strip.frame_final_start == 1001 and strip.frame_final_duration == 10
    names = [e.filename for e in strip.elements]
    assert names[4] == "sh 010#v2%.1004.png"  # frame 1005 holds 1004
    assert names[5] == "sh 010#v2%.1006.png"  # and 1006 is still shown at scene frame 1006
    assert result.warnings and "1005" in result.warnings[0]


def test_a_gap_in_a_sequence_clip_is_reported(extension: str, clean_scene, gappy_sequence: Path) -> None:
    from importlib import import_module

    importer = import_module(f"{extension}.importer")
    asset = importer.local_asset(str(gappy_sequence / "sh 010#v2%.1001.png"))
    result = importer.import_asset(asset, "clip", start_frame=1001)
    (clip,) = bpy.data.movieclips
    assert clip.frame_start == 1001 and clip.size[:] == (64, 36)
    assert result.warnings == ["1 missing frame(s) in the sequence (1005): the movie clip stops before image 1005 "
                               "(Blender ends a clip at a gap)"]


def test_export_names_frames_past_the_last_solved_camera(extension: str, clean_scene, tmp_path: Path) -> None:
    truth = make_plate(tmp_path / "plate", "hero", frames=40, first_frame=1001)
    clip = bpy.data.movieclips.load(truth.pattern)
    clip.frame_start = 1001
    clip.tracking.camera.sensor_width = truth.sensor_width_mm
    assert bpy.ops.mediaidx.track_plate(clip=clip.name, focal_px=truth.focal_px) == {"FINISHED"}
    full = tmp_path / "full"
    assert bpy.ops.mediaidx.export_tracking(directory=str(full), clip=clip.name) == {"FINISHED"}
    assert json.loads((full / "shot.json").read_text())["cameras"][0]["unsolved_frames"] == []
    # Ten more images arrive after the solve: the plate now runs past the last solved camera.
    for f in range(1041, 1051):
        shutil.copy(tmp_path / "plate" / "hero.1040.png", tmp_path / "plate" / f"hero.{f}.png")
    clip.filepath = clip.filepath  # reload
    out = tmp_path / "export"
    assert bpy.ops.mediaidx.export_tracking(directory=str(out), clip=clip.name) == {"FINISHED"}
    cam = json.loads((out / "shot.json").read_text())["cameras"][0]
    assert (cam["first_frame"], cam["last_frame"]) == (1001, 1050)
    assert cam["unsolved_frames"] == [[1041, 1050]]


def test_export_into_a_path_that_is_a_file_is_an_error(extension: str, clean_scene, tmp_path: Path) -> None:
    truth = make_plate(tmp_path / "plate", "hero", frames=30)
    clip = bpy.data.movieclips.load(truth.pattern)
    clip.name = "sh:010/a b"  # not a valid file name anywhere
    clip.tracking.camera.sensor_width = truth.sensor_width_mm
    assert bpy.ops.mediaidx.track_plate(clip=clip.name, focal_px=truth.focal_px) == {"FINISHED"}
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(RuntimeError, match="export failed"):
        bpy.ops.mediaidx.export_tracking(directory=str(blocker / "sub"), clip=clip.name)
    out = tmp_path / "ok"
    assert bpy.ops.mediaidx.export_tracking(directory=str(out), clip=clip.name) == {"FINISHED"}
    assert {p.name for p in out.iterdir()} >= {"sh_010_a_b.fbx", "sh_010_a_b_lens.json", "shot.json"}


def _batch(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "blender_mediaidx.batch", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**os.environ, "HOME": str(home)})


@pytest.mark.parametrize(("extra", "message"), [
    (["--fps", "fast"], "--fps 'fast' is not a frame rate"),
    (["--formats", "chan,usd"], "--formats: unknown 'usd'"),
    (["--survey", "MISSING"], "No such file"),
    (["--survey", "NOTJSON"], "not JSON"),
    (["--survey", "BADSHAPE"], "is not [frame, x, y]"),
])
def test_batch_track_refuses_bad_options_in_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    (tmp_path / "notjson.json").write_text("{oops")
    (tmp_path / "badshape.json").write_text(json.dumps({"P1": {"hero": [[1, 2]]}}))
    paths = {"MISSING": tmp_path / "none.json", "NOTJSON": tmp_path / "notjson.json",
             "BADSHAPE": tmp_path / "badshape.json"}
    extra = [str(paths.get(a, a)) for a in extra]
    r = _batch(["track", str(tmp_path / "hero.mov"), "--out", str(tmp_path / "out"), *extra], tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert message in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_batch_track_into_an_unwritable_folder_is_one_json_line(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    r = _batch(["track", str(tmp_path / "hero.mov"), "--out", str(tmp_path / "blocker" / "out")], tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["built"] == [] and "cannot write the exports" in summary["failed"][0]["error"]


def test_batch_blend_into_an_unwritable_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    r = _batch(["--bridge", "tcp://127.0.0.1:9", "1", "--out", str(tmp_path / "blocker" / "out")], tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cannot create the output folder" in json.loads(r.stderr.strip().splitlines()[-1])["error"]


def test_mediaidx_track_checks_the_survey_and_output_first(tmp_path: Path) -> None:
    from bridge.track import run_track

    (tmp_path / "blocker").write_text("x")
    (tmp_path / "survey.json").write_text(json.dumps(["not", "a", "survey"]))
    with pytest.raises(MediaIdxError, match=r"survey .*survey\.json: a survey is a JSON object"):
        run_track(str(tmp_path / "hero.mov"), tmp_path / "out", survey=tmp_path / "survey.json")
    with pytest.raises(MediaIdxError, match="cannot create the output folder"):
        run_track(str(tmp_path / "hero.mov"), tmp_path / "blocker" / "out")
    with pytest.raises(MediaIdxError, match=r"^--fps 'x' is not a frame rate"):
        run_track(str(tmp_path / "hero.mov"), tmp_path / "out", fps="x")


@pytest.mark.parametrize("mode", ["clip", "plane"])
def test_an_anamorphic_plate_is_widened_once(extension: str, clean_scene, tmp_path: Path, mode: str) -> None:
    import av

    path = tmp_path / "anamorphic 4x3.mov"
    with av.open(str(path), "w") as out:  # 144x108 stored, 4:3 pixels: 192x108 on screen
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 144, 108, "yuv420p"
        s.codec_context.sample_aspect_ratio = Fraction(4, 3)
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((108, 144, 3), np.uint8), format="rgb24")
            frame.pts = i
            out.mux(s.encode(frame))
        out.mux(s.encode())
    assert bpy.ops.mediaidx.import_plate(filepath=str(path), mode=mode) == {"FINISHED"}
    r = bpy.context.scene.render
    assert (r.resolution_x, r.resolution_y) == (144, 108)
    assert r.resolution_x * r.pixel_aspect_x / (r.resolution_y * r.pixel_aspect_y) == pytest.approx(192 / 108)
    if mode == "clip":
        (clip,) = bpy.data.movieclips
        assert clip.size[:] == (144, 108)
        assert clip.tracking.camera.pixel_aspect == pytest.approx(4 / 3)  # the solve sees 4:3 pixels too
    else:
        (obj,) = [o for o in bpy.context.scene.objects if o.type == "MESH"]
        xs, ys = [v.co.x for v in obj.data.vertices], [v.co.y for v in obj.data.vertices]
        assert (max(xs) - min(xs)) / (max(ys) - min(ys)) == pytest.approx(192 / 108)


def test_a_witness_without_a_solve_keeps_the_hero_export(extension: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from blender_mediaidx import batch

    hero = make_plate(tmp_path / "hero", "hero", frames=30)
    for i in range(1, 13):  # a featureless witness: nothing to track
        Image.new("RGB", (320, 180), (128, 128, 128)).save(tmp_path / f"flat.{i:04d}.png")
    out = tmp_path / "shot"
    code = batch.main(["track", hero.pattern, "--witness", str(tmp_path / "flat.0001.png"), "--offset", "2",
                       "--sensor-width", "36", "--formats", "chan,json", "--out", str(out)])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1
    assert [c["role"] for c in summary["built"]] == ["hero"]
    (failure,) = summary["failed"]
    assert failure["role"] == "witness" and "no solve" in failure["error"]
    manifest = json.loads((out / "shot.json").read_text())
    hero_cam, wit = manifest["cameras"]
    assert hero_cam["solve"]["ok"] and (out / hero_cam["files"]["chan"]).is_file()
    assert not wit["solve"]["ok"] and wit["solve"]["reason"] and wit["files"] == {}
    assert wit["camera_object"] is None and wit["alignment"] is None
    assert wit["sync"]["offset_frames"] == 2.0 and (wit["first_frame"], wit["last_frame"]) == (3, 14)


def test_a_file_name_that_is_not_utf8_imports_or_fails_in_one_line(extension: str, clean_scene,
                                                                   tmp_path: Path) -> None:
    src = synth.make_video(tmp_path / "src.mov", fps=Fraction(25), frames=5, width=64, height=36)
    raw = os.fsencode(tmp_path) + b"/take\xff 1.mov"  # bytes a Windows share or an old camera card leaves
    os.link(os.fsencode(src), raw)
    path = os.fsdecode(raw)
    assert bpy.ops.mediaidx.import_plate(filepath=path, mode="clip") == {"FINISHED"}
    (clip,) = bpy.data.movieclips
    assert clip.name == "take\ufffd 1" and clip.frame_duration == 5 and clip.size[:] == (64, 36)
    assert bpy.ops.mediaidx.import_plate(filepath=path, mode="plane") == {"FINISHED"}
    # The sequencer takes text paths only: a clear refusal, and the scene is left as it was.
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    before = (scene.render.fps, scene.frame_end, scene.render.resolution_x)
    with pytest.raises(RuntimeError, match="not valid UTF-8") as e:
        bpy.ops.mediaidx.import_plate(filepath=path, mode="strip")
    assert "Traceback" not in str(e.value)
    assert (scene.render.fps, scene.frame_end, scene.render.resolution_x) == before
    assert scene.sequence_editor is None or not scene.sequence_editor.strips_all


@pytest.mark.parametrize(("doc", "message"), [
    ({"groups": []}, "expected the output of `mediaidx sync --json`"),
    ({"results": ["a.wav"]}, "entry 0 has no file path"),
    ([{"path": "a.wav", "status": "reference", "offset_seconds": "soon"}], "offset_seconds 'soon' is not a number"),
])
def test_malformed_sync_results_are_one_line_errors(extension: str, clean_scene, doc: object, message: str) -> None:
    with pytest.raises(RuntimeError, match="sync results: ") as e:
        bpy.ops.mediaidx.build_synced_timeline(results=json.dumps(doc))
    assert message in str(e.value) and "Traceback" not in str(e.value)
    assert clean_scene.sequence_editor is None or not clean_scene.sequence_editor.strips_all


def test_batch_blend_bad_bridge_and_key_are_one_line(tmp_path: Path) -> None:
    r = _batch(["--bridge", "nas01:5557", "1", "--out", str(tmp_path / "out")], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--bridge 'nas01:5557' is not a ZeroMQ address" in r.stderr.strip().splitlines()[-1]
    r = _batch(["--bridge", "tcp://127.0.0.1:9", "--client-key", str(tmp_path / "none.key_secret"), "1",
                "--out", str(tmp_path / "out")], tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert json.loads(r.stderr.strip().splitlines()[-1])["error"].startswith("--client-key: ")


def test_a_wrong_client_key_preference_is_reported_not_raised(extension: str, clean_scene, tmp_path: Path) -> None:
    prefs = bpy.context.preferences.addons[extension].preferences
    link_mod = sys.modules[f"{extension}.bridge_link"]
    (tmp_path / "only.key").write_text("metadata\ncurve\n    public-key = \"" + "a" * 40 + "\"\n")
    try:
        for bad, message in ((tmp_path / "none.key_secret", "Client Key File preference: "),
                             (tmp_path / "only.key", "has no secret key")):
            prefs.client_key_file = str(bad)
            for op in (bpy.ops.mediaidx.connect, bpy.ops.mediaidx.search,
                       lambda: bpy.ops.mediaidx.import_plate(asset_id=7)):
                with pytest.raises(RuntimeError, match=message) as e:
                    op()
                assert "Traceback" not in str(e.value)
            st = bpy.context.window_manager.mediaidx
            st.query = f"harbour {message}"  # typing in the search field searches again
            assert message in st.message
            assert link_mod.link(connect=False) is None
    finally:
        prefs.client_key_file = ""


def test_tracking_a_plate_deleted_since_it_was_loaded_says_so(extension: str, clean_scene, tmp_path: Path) -> None:
    path = synth.make_video(tmp_path / "gone.mov", fps=Fraction(25), frames=30, width=160, height=90)
    clip = bpy.data.movieclips.load(str(path))
    path.unlink()
    with pytest.raises(RuntimeError, match=r"gone\.mov: the plate is missing on disk"):
        bpy.ops.mediaidx.track_plate(clip=clip.name)
    with pytest.raises(RuntimeError, match="no movie clip named 'nope'"):
        bpy.ops.mediaidx.track_plate(clip="nope")


def test_mediaidx_blend_refuses_a_bad_mode_or_output_before_starting_workers(tmp_path: Path) -> None:
    from blender_mediaidx.importer import MODES
    from bridge import MediaIndexer
    from bridge.blend import MODES as BLEND_MODES
    from bridge.blend import build_blends

    assert BLEND_MODES == MODES
    (tmp_path / "blocker").write_text("x")
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        with pytest.raises(MediaIdxError, match="unknown import mode 'movie'"):
            build_blends(ix, [1], tmp_path / "out", mode="movie")
        with pytest.raises(MediaIdxError, match="cannot create the output folder"):
            build_blends(ix, [1], tmp_path / "blocker" / "out")


def test_the_panel_shows_a_broken_frame_rate_as_it_is(extension: str) -> None:
    fps = sys.modules[f"{extension}.ui"]._fps
    assert fps("24000/1001") == "23.976 fps" and fps("25") == "25 fps"
    assert fps("0/0") == "0/0" and fps("n/a") == "n/a"  # drawn as text, not a draw() exception on every redraw
