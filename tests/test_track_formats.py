"""The bpy-free tracking interchange: .chan, 3DE points, CSV/JSON tracks and similarity alignment."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from blender_mediaidx.core.similarity import apply_similarity, similarity_transform, transform_camera
from blender_mediaidx.core.track_formats import (
    ChanRow,
    chan_matrix,
    euler_to_matrix,
    matrix_to_euler,
    read_3de_points,
    read_chan,
    tracks_document,
    vertical_fov_deg,
    write_3de_points,
    write_chan,
    write_tracks_csv,
)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("order", ["ZXY", "XYZ"])
def test_euler_round_trip(order: str) -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        rot = random_rotation(rng)
        assert np.allclose(euler_to_matrix(matrix_to_euler(rot, order), order), rot, atol=1e-9)



def test_chan_round_trip_keeps_every_frame_and_the_camera(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frames = []
    for f in range(1001, 1049):
        m = np.eye(4)
        m[:3, :3] = random_rotation(rng)
        m[:3, 3] = rng.uniform(-50, 50, 3)
        frames.append((f, m))
    vfov = vertical_fov_deg(35.0, 36.0, 1920, 1080)
    path = tmp_path / "cam_ZXY.chan"
    assert write_chan(path, frames, vfov) == 48
    rows = read_chan(path)
    assert [r.frame for r in rows] == list(range(1001, 1049))  # the last frame too
    for (_, m), row in zip(frames, rows, strict=True):
        assert np.allclose(chan_matrix(row), m, atol=1e-7)
        assert row.vfov == pytest.approx(vfov, abs=1e-8)
    # Y up: Blender's +Z is Nuke's +Y.
    up = np.eye(4)
    up[:3, 3] = (0, 0, 5)
    write_chan(path, [(1, up)], None)
    assert read_chan(path)[0].translate == pytest.approx((0, 5, 0))


def test_vertical_fov_of_a_full_frame_35mm() -> None:
    # 36 x 24 mm back at 3:2, 35 mm lens: 2 atan(12/35) = 37.85 degrees
    assert vertical_fov_deg(35, 36, 3000, 2000) == pytest.approx(math.degrees(2 * math.atan(12 / 35)))


def test_chan_rejects_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.chan"
    path.write_text("1 0 0 0\n")
    with pytest.raises(ValueError, match="7 or 8 fields"):
        read_chan(path)
    assert ChanRow(1, (0, 0, 0), (0, 0, 0), None).vfov is None


def test_3de_points_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    tracks = [(f"Track.{i:03d}", [(f, float(x), float(y)) for f, (x, y) in
                                  zip(range(1001 + i, 1020 + i), rng.uniform(0, 1920, (19, 2)), strict=True)])
              for i in range(5)]
    tracks.append(("name with spaces é", [(1, 0.5, 0.5)]))
    path = tmp_path / "hero.txt"
    write_3de_points(path, tracks)
    back = read_3de_points(path)
    assert len(back) == 6 and back[-1][0] == "name_with_spaces__"
    for (_, a), (_, b) in zip(tracks, back, strict=True):
        assert [f for f, _, _ in a] == [f for f, _, _ in b]
        assert np.allclose([(x, y) for _, x, y in a], [(x, y) for _, x, y in b], atol=1e-12)
    assert path.read_text().splitlines()[:4] == ["6", "Track.000", "0", "19"]


def test_tracks_csv_and_json(tmp_path: Path) -> None:
    tracks = [("A", [(1, 960.0, 540.0), (2, 961.5, 539.0)])]
    write_tracks_csv(tmp_path / "t.csv", tracks, 1920, 1080)
    rows = list(csv.DictReader((tmp_path / "t.csv").read_text().splitlines()))
    assert rows[1] == {"track": "A", "frame": "2", "x_px": "961.500000", "y_px": "539.000000",
                       "u": f"{961.5 / 1920:.9f}", "v": f"{539 / 1080:.9f}"}
    doc = tracks_document(tracks, 1920, 1080, errors={"A": 0.2}, bundles={"A": (1, 2, 3)})
    assert doc["convention"]["origin"].startswith("lower-left") and doc["tracks"][0]["bundle"] == [1, 2, 3]


def test_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(4)
    src = rng.normal(size=(6, 3))
    rot = random_rotation(rng)
    dst = 2.5 * src @ rot.T + [1, -2, 3]
    s, r, t = similarity_transform(src, dst)
    assert s == pytest.approx(2.5) and np.allclose(r, rot) and np.allclose(t, [1, -2, 3])
    assert np.allclose(apply_similarity(src, s, r, t), dst)
    cam = np.eye(4)
    cam[:3, 3] = src[0]
    moved = transform_camera(cam, s, r, t)
    assert np.allclose(moved[:3, 3], dst[0]) and np.allclose(moved[:3, :3], rot)


def test_similarity_needs_three_points_off_a_line() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        similarity_transform(np.zeros((2, 3)), np.zeros((2, 3)))
    line = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2.0]])
    with pytest.raises(ValueError, match="collinear"):
        similarity_transform(line, line * 2)


def test_zxy_applies_z_first() -> None:
    # ZXY: about Z first, then X, then Y, so the matrix is Ry @ Rx @ Rz.
    rz, rx, ry = (euler_to_matrix(a, "ZXY") for a in ((0, 0, 30), (20, 0, 0), (0, 40, 0)))
    assert np.allclose(euler_to_matrix((20, 40, 30), "ZXY"), ry @ rx @ rz)
