"""A pixel aspect given by hand, for an anamorphic plate whose metadata lost it (a transcode): `mediaidx track
--pixel-aspect` (hero) and `--witness-pixel-aspect` (per witness) solve as the metadata would have, the dry run
names the same filmback, bad values are one line before anything starts; the plate importer's *Pixel Aspect*
gives the scene and the clip's tracking camera the squeeze."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import bpy
import pytest

from bridge.probe import probe_file
from bridge.synth_tracking import CameraTruth, make_plate

FRAMES = 48
SEED_ERROR = 1.15
SENSOR_MM = 36.0


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> CameraTruth:
    """test_tracking_anamorphic.py's 2x plate (480x360 stored, 390 px), its movie without a sample aspect ratio."""
    truth = make_plate(tmp_path_factory.mktemp("bare"), "hero", frames=FRAMES, width=480, height=360,
                       focal_px=390.0, pixel_aspect=Fraction(2), write_aspect=False)
    (stream,) = probe_file(truth.pattern)["streams"]
    assert "sample_aspect_ratio" not in stream  # nothing to read: only the override knows the squeeze
    return truth


def mediaidx(*args: str, catalog: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge.cli.app", "--catalog", str(catalog), *args],
                          capture_output=True, text=True, timeout=900)


def test_track_with_a_given_pixel_aspect_solves_the_squeezed_plate(bare: CameraTruth, tmp_path: Path) -> None:
    out = tmp_path / "shot"
    # the same plate as its own witness: the per-witness value reaches the witness's camera too
    args = ["track", bare.pattern, "--witness", bare.pattern, "--out", str(out), "--sensor-width", str(SENSOR_MM),
            "--focal-px", str(bare.focal_px * SEED_ERROR), "--formats", "chan,json", "--json"]
    plain = mediaidx(*args, "--dry-run", catalog=tmp_path / "c.sqlite")
    assert plain.returncode == 0, plain.stderr
    assert {Path(p["path"]).name for p in json.loads(plain.stdout)["plan"]} >= {"hero_ZXY_36x27.chan"}  # square

    given = [*args, "--pixel-aspect", "2", "--witness-pixel-aspect", "2"]
    dry = mediaidx(*given, "--dry-run", catalog=tmp_path / "c.sqlite")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)["plan"]
    planned = {Path(p["path"]).name for p in plan}
    assert {"hero_ZXY_36x13.5.chan", "witness1_ZXY_36x13.5.chan"} <= planned
    assert "pixel aspect 2 (given)" in plan[0]["reason"]
    assert not out.exists()

    real = mediaidx(*given, catalog=tmp_path / "c.sqlite")
    assert real.returncode == 0, real.stderr[-2000:]
    assert {p.name for p in out.iterdir()} == planned  # the dry run named exactly what the run wrote
    manifest = json.loads((out / "shot.json").read_text())
    assert [c["role"] for c in manifest["cameras"]] == ["hero", "witness"]
    for cam in manifest["cameras"]:
        assert cam["solve"]["ok"] and cam["solve"]["error_px"] < 0.5
        lens = json.loads((out / cam["files"]["lens"]).read_text())
        assert lens["pixel_aspect"] == pytest.approx(2.0)
        # within test_tracking_anamorphic.py's tolerances: both focal lengths within 2% of the truth
        assert lens["focal_length_px"] == pytest.approx(bare.focal_px, rel=0.02)
        assert lens["focal_length_y_px"] == pytest.approx(bare.focal_y_px, rel=0.02)
        assert lens["sensor_height_mm"] == pytest.approx(SENSOR_MM * 360 / (480 * 2.0))


@pytest.mark.parametrize(("extra", "message"), [
    (["--pixel-aspect", "0"], "--pixel-aspect 0 is not a pixel aspect"),
    (["--pixel-aspect", "11"], "--pixel-aspect 11 is not a pixel aspect"),
    (["--pixel-aspect", "nan"], "--pixel-aspect nan is not a pixel aspect"),
    (["--witness-pixel-aspect", "0.05"], "--witness-pixel-aspect 0.05 is not a pixel aspect"),
    (["--witness-pixel-aspect", "2", "--witness-pixel-aspect", "2"],
     "more --witness-pixel-aspect values than --witness plates"),
])
@pytest.mark.parametrize("dry", [True, False])
def test_a_bad_pixel_aspect_is_one_line_before_anything_starts(bare: CameraTruth, tmp_path: Path,
                                                                 extra: list[str], message: str, dry: bool) -> None:
    out = tmp_path / "shot"
    args = ["track", bare.pattern, "--witness", bare.pattern, "--out", str(out), *extra]
    res = mediaidx(*args, *(["--dry-run"] if dry else []), catalog=tmp_path / "c.sqlite")
    assert res.returncode != 0
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()


def test_the_batch_job_refuses_a_bad_pixel_aspect_itself(bare: CameraTruth, tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "blender_mediaidx.batch", "track", bare.pattern, "--out",
                          str(tmp_path / "o"), "--pixel-aspect", "20"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--pixel-aspect 20 is not a pixel aspect" in res.stderr


def test_import_with_a_pixel_aspect_sets_the_scene_and_the_tracking_camera(extension: str, clean_scene,
                                                                          bare: CameraTruth) -> None:
    assert bpy.ops.mediaidx.import_plate(filepath=bare.pattern, mode="clip") == {"FINISHED"}
    r = bpy.context.scene.render
    assert (r.pixel_aspect_x, r.pixel_aspect_y) == (1.0, 1.0)  # no metadata: square, as Blender reads it

    bpy.ops.wm.read_homefile(use_empty=True)
    assert bpy.ops.mediaidx.import_plate(filepath=bare.pattern, mode="clip", pixel_aspect=2.0) == {"FINISHED"}
    r = bpy.context.scene.render
    assert (r.resolution_x, r.resolution_y) == (480, 360)  # the stored pixels
    assert (r.pixel_aspect_x, r.pixel_aspect_y) == (2.0, 1.0)
    (clip,) = bpy.data.movieclips
    assert clip.tracking.camera.pixel_aspect == pytest.approx(2.0)


def test_import_with_a_pixel_aspect_below_one_and_on_a_plane(extension: str, clean_scene, bare: CameraTruth) -> None:
    from blender_mediaidx import importer

    scene = bpy.context.scene
    result = importer.import_asset(importer.local_asset(bare.pattern), "plane", scene=scene, pixel_aspect=0.5)
    assert (scene.render.pixel_aspect_x, scene.render.pixel_aspect_y) == (1.0, 2.0)
    assert any("pixel aspect 0.5 as given" in n for n in result.notes)
    (plane,) = [o for o in scene.objects if o.type == "MESH"]
    xs, ys = [v.co.x for v in plane.data.vertices], [v.co.y for v in plane.data.vertices]
    assert (max(xs) - min(xs)) / (max(ys) - min(ys)) == pytest.approx(480 * 0.5 / 360)  # the picture on screen


def test_import_refuses_a_bad_pixel_aspect_and_creates_nothing(extension: str, clean_scene,
                                                               bare: CameraTruth) -> None:
    from blender_mediaidx import importer

    with pytest.raises(importer.PlateImportError, match=r"pixel aspect 0\.05 is not a pixel aspect"):
        importer.import_asset(importer.local_asset(bare.pattern), "clip", scene=bpy.context.scene, pixel_aspect=0.05)
    assert not bpy.data.movieclips
    with pytest.raises(RuntimeError, match=r"pixel aspect 0\.05 is not a pixel aspect"):  # reported in one line
        bpy.ops.mediaidx.import_plate(filepath=bare.pattern, mode="clip", pixel_aspect=0.05)
    assert not bpy.data.movieclips
