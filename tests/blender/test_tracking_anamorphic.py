"""Anamorphic plates tracked through `mediaidx track`: the pixel aspect comes from the container's sample aspect
ratio, the solve honours it (Blender's convention: the solved focal length is horizontal in stored pixels, the
vertical one is pixel_aspect times it), and every export and the dry run's file names carry it."""

from __future__ import annotations

import json
import math
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from blender_mediaidx.core import track_formats as tf
from bridge.synth_tracking import CameraTruth, make_plate, similarity_error

pytest.importorskip("bpy")

FRAMES = 48
SEED_ERROR = 1.15  # the focal length we start from is 15% off
SENSOR_MM = 36.0

# (stored size, sample aspect ratio, horizontal focal in stored pixels, the .chan's filmback): a 2x scope squeeze
# (960x360 on screen) and DV/HDV's 4:3 pixels (640x360 on screen, 1440x1080 scaled down).
CASES = {
    "2x": ((480, 360), Fraction(2), 390.0, "36x13.5"),
    "4:3": ((480, 360), Fraction(4, 3), 390.0, "36x20.2"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[CameraTruth, str]:
    (w, h), sar, focal, filmback = CASES[request.param]
    truth = make_plate(tmp_path_factory.mktemp("anamorphic"), "hero", frames=FRAMES, width=w, height=h,
                       focal_px=focal, pixel_aspect=sar)
    return truth, filmback


def fbx_double(data: bytes, name: bytes) -> float:
    """A camera's double property from a binary FBX (P: name, type, label, flags, then the value 'D'); the last
    one written, the camera's own (the first is the Definitions template's default)."""
    i = data.rindex(b"S" + struct.pack("<I", len(name)) + name + b"S") + 5 + len(name)
    for _ in range(3):  # the type, label and flags strings
        assert data[i:i + 1] == b"S"
        i += 5 + struct.unpack("<I", data[i + 1:i + 5])[0]
    assert data[i:i + 1] == b"D"
    return struct.unpack("<d", data[i + 1:i + 9])[0]


def test_an_anamorphic_plate_solves_and_exports_with_its_pixel_aspect(case: tuple[CameraTruth, str],
                                                                       tmp_path: Path) -> None:
    from bridge.track import plan_track, run_track

    truth, filmback = case
    out = tmp_path / "shot"
    opts = {"focal_px": truth.focal_px * SEED_ERROR, "sensor_width": SENSOR_MM}
    plan = plan_track(truth.pattern, out, **opts)
    summary = run_track(truth.pattern, out, **opts)
    assert [c["role"] for c in summary["built"]] == ["hero"] and not summary["failed"]

    # The dry run named exactly what the run wrote, the filmback of the de-squeezed picture included.
    assert sorted(Path(item.path).name for item in plan) == sorted(p.name for p in out.iterdir())
    (cam,) = json.loads((out / "shot.json").read_text())["cameras"]
    files = cam["files"]
    assert files["chan"] == f"hero_ZXY_{filmback}.chan"
    assert f"pixel aspect {truth.pixel_aspect:.4g}" in plan[0].reason

    assert cam["solve"]["ok"] and cam["solve"]["error_px"] < 0.5
    lens = json.loads((out / files["lens"]).read_text())
    assert lens["pixel_aspect"] == pytest.approx(truth.pixel_aspect)
    assert (lens["width"], lens["height"]) == (truth.width, truth.height)  # stored pixels
    # Refined from a guess 15% off: horizontal and vertical focal lengths within 2% of the truth.
    assert lens["focal_length_px"] == pytest.approx(truth.focal_px, rel=0.02)
    assert lens["focal_length_y_px"] == pytest.approx(truth.focal_y_px, rel=0.02)
    assert lens["focal_length_mm"] == pytest.approx(truth.focal_mm, rel=0.02)
    assert lens["sensor_height_mm"] == pytest.approx(SENSOR_MM * truth.height / (truth.width * truth.pixel_aspect))
    true_vfov = math.degrees(2 * math.atan(truth.height / 2 / truth.focal_y_px))
    true_hfov = math.degrees(2 * math.atan(truth.width / 2 / truth.focal_px))
    assert lens["vfov_deg"] == pytest.approx(true_vfov, rel=0.02)
    assert lens["hfov_deg"] == pytest.approx(true_hfov, rel=0.02)
    plate = json.loads((out / files["plate"]).read_text())
    assert plate["pixel_aspect"] == pytest.approx(truth.pixel_aspect) and plate["source"] == "movie"

    # The .chan camera: the true path after a similarity alignment, with the true vertical field of view.
    rows = tf.read_chan(out / files["chan"])
    assert [r.frame for r in rows] == list(range(1, FRAMES + 1))
    assert rows[0].vfov == pytest.approx(true_vfov, rel=0.02)
    mats = np.array([tf.chan_matrix(r) for r in rows])
    err, length = similarity_error(mats, np.array(truth.matrices))
    assert err.max() < 0.02, f"camera off by {100 * err.max():.2f}% of the {length:.2f} m path"

    # 2D tracks are in the plate's stored pixels: each bundle, projected by the exported camera with
    # fy = fx * pixel_aspect, lands on its 3DE markers.
    doc = json.loads((out / files["json"]).read_text())
    bundles = {t["name"]: t["bundle"] for t in doc["tracks"] if t.get("bundle")}
    assert len(bundles) >= 8
    fx, fy = lens["focal_length_px"], lens["focal_length_y_px"]
    cx, cy = lens["principal_point_px"]
    misses = []
    for name, markers in tf.read_3de_points(out / files["3de"]):
        if name not in bundles:
            continue
        for frame, x, y in markers:
            m = mats[int(frame) - 1]
            local = (np.asarray(bundles[name]) - m[:3, 3]) @ m[:3, :3]
            misses.append(math.hypot(cx + fx * local[0] / -local[2] - x, cy + fy * local[1] / -local[2] - y))
    assert np.median(misses) < 0.5, f"median reprojection {np.median(misses):.2f} px"

    # FBX keeps the picture and its pixel aspect; FBX and Alembic the filmback (Alembic has no pixel aspect).
    fbx = (out / files["fbx"]).read_bytes()
    assert fbx_double(fbx, b"PixelAspectRatio") == pytest.approx(truth.pixel_aspect, rel=1e-6)
    assert (fbx_double(fbx, b"AspectWidth"), fbx_double(fbx, b"AspectHeight")) == (truth.width, truth.height)
    assert fbx_double(fbx, b"FilmHeight") * 25.4 == pytest.approx(lens["sensor_height_mm"], rel=1e-5)
    assert fbx_double(fbx, b"FocalLength") == pytest.approx(lens["focal_length_mm"], rel=1e-5)


def test_the_exported_camera_projects_like_the_solve(case: tuple[CameraTruth, str]) -> None:
    """The scene camera every export is baked from (lens, shifts, render pixel aspect) projects a point where
    the solve's pinhole does: fy = fx * pixel_aspect, an off-centre principal point in stored pixels."""
    import bpy
    from mathutils import Vector

    from blender_mediaidx.tracking import export

    truth, _ = case
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    clip = bpy.data.movieclips.load(truth.pattern)
    tcam = clip.tracking.camera
    tcam.pixel_aspect, tcam.sensor_width, tcam.focal_length_pixels = truth.pixel_aspect, SENSOR_MM, truth.focal_px
    tcam.principal_point_pixels = (truth.width / 2 + 12.0, truth.height / 2 - 7.0)
    w, h = clip.size
    scene.render.resolution_x, scene.render.resolution_y = w, h
    export.set_pixel_aspect(scene, tcam.pixel_aspect)
    obj = export.solved_camera(scene, clip)
    proj = obj.calc_matrix_camera(bpy.context.evaluated_depsgraph_get(), x=w, y=h,
                                  scale_x=scene.render.pixel_aspect_x, scale_y=scene.render.pixel_aspect_y)
    px, py = tcam.principal_point_pixels
    fx, fy = tcam.focal_length_pixels, tcam.focal_length_pixels * tcam.pixel_aspect
    for x, y in ((0.0, 0.0), (0.2, 0.1), (-0.3, -0.15)):
        v = proj @ Vector((x, y, -1.0, 1.0))
        got = ((v.x / v.w + 1) / 2 * w, (v.y / v.w + 1) / 2 * h)
        assert got == pytest.approx((px + fx * x, py + fy * y), abs=1e-3)
    assert obj.data.sensor_height == pytest.approx(SENSOR_MM * h / (w * truth.pixel_aspect), rel=1e-6)


@pytest.mark.parametrize(("stream", "expected"), [
    ({"width": 1440, "height": 1080, "sample_aspect_ratio": "4/3"}, 4 / 3),
    ({"width": 1440, "height": 1080, "sample_aspect_ratio": "4/3", "rotation": -90}, 3 / 4),  # Blender turns it
    ({"width": 720, "height": 576, "sample_aspect_ratio": "16/15"}, 16 / 15),
    ({"width": 640, "height": 360}, 1.0),
])
def test_the_pixel_aspect_comes_from_the_probe(stream: dict, expected: float) -> None:
    from blender_mediaidx.tracking.plan import filmback, pixel_aspect_from_probe

    probe = {"kind": "video", "streams": [{"type": "video", **stream}]}
    pa = pixel_aspect_from_probe(probe)
    assert pa == pytest.approx(expected)
    w, h = (stream["height"], stream["width"]) if stream.get("rotation") else (stream["width"], stream["height"])
    assert filmback(36.0, w, h, pa)[1] == pytest.approx(36.0 * h / (w * expected), rel=1e-6)
