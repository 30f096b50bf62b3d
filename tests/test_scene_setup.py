"""Probe to scene settings without Blender: exact frame rates, ranges, sizes, sequences, pushed shots."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from blender_mediaidx.core.scene_setup import blender_fps, parse_rate, pick_colorspace, plate_settings
from blender_mediaidx.core.sequences import find_sequence
from blender_mediaidx.core.shots import parse_shots


def asset(rate: str, frames: int | None = 48, **video: object) -> dict:
    stream = {"type": "video", "frame_rate": rate, "width": 1920, "height": 1080, **video}
    if frames is not None:
        stream["frame_count"] = frames
    return {"id": 1, "kind": "video", "path": "/x.mov", "ext": "mov", "probe": {"streams": [stream]},
            "duration": 2.0}


@pytest.mark.parametrize(("rate", "fps", "base"), [
    ("24000/1001", 24000, 1001.0), ("25/1", 25, 1.0), ("30000/1001", 30000, 1001.0), ("24/1", 24, 1.0),
    ("12600/1703", 12600, 1703.0), ("60000/1001", 30000, 500.5),
])
def test_frame_rates_stay_exact(rate: str, fps: int, base: float) -> None:
    s = plate_settings(asset(rate))
    assert (s.fps, s.fps_base) == (fps, base)
    assert Fraction(s.fps) / Fraction(s.fps_base) == Fraction(rate)


def test_frame_range_resolution_and_start() -> None:
    s = plate_settings(asset("24000/1001", 96), start_frame=1001)
    assert (s.frame_start, s.frame_end, s.width, s.height) == (1001, 1096, 1920, 1080)
    # no frame count in the header: duration x rate
    assert plate_settings(asset("25/1", None)).frame_count == 50
    # a phone clip shot upright: the display size is portrait
    s = plate_settings(asset("30000/1001", display_width=1080, display_height=1920))
    assert (s.width, s.height) == (1080, 1920)
    s = plate_settings(asset("25/1", sample_aspect_ratio="4/3"))
    assert (s.pixel_aspect_x, s.pixel_aspect_y) == (4 / 3, 1.0)


def test_anamorphic_plates_keep_their_stored_pixels() -> None:
    # 1440x1080 stored, 4:3 pixels: the probe says 1920x1080 on screen; the scene must not widen it twice
    s = plate_settings(asset("25/1", width=1440, sample_aspect_ratio="4/3", display_width=1920, display_height=1080))
    assert (s.width, s.height, s.pixel_aspect_x, s.pixel_aspect_y) == (1440, 1080, 4 / 3, 1.0)
    assert s.width * s.pixel_aspect_x / (s.height * s.pixel_aspect_y) == 1920 / 1080
    # turned upright by the phone: stored 1440x1080 shows as 1080x1920, its pixels tall instead of wide
    s = plate_settings(asset("25/1", width=1440, sample_aspect_ratio="4/3", rotation=-90, display_width=1080,
                             display_height=1920))
    assert (s.width, s.height) == (1080, 1440)
    assert s.width * s.pixel_aspect_x / (s.height * s.pixel_aspect_y) == pytest.approx(1080 / 1920)


def test_colour_spaces() -> None:
    assert plate_settings(asset("25", color_transfer="bt709")).colorspace == "Rec.1886"
    assert plate_settings(asset("25", hdr="pq")).colorspace == "Rec.2100-PQ"
    assert plate_settings(asset("25", color_transfer="arib-std-b67")).colorspace == "Rec.2100-HLG"
    assert plate_settings({**asset("24"), "ext": "exr"}).colorspace == "Linear Rec.709"
    assert pick_colorspace("Rec.2100-PQ", ("Rec.1886", "sRGB"), {"sRGB", "Rec.1886"}) == "Rec.1886"
    assert pick_colorspace("Nope", (), {"sRGB"}) == "sRGB"


def test_rates_from_text() -> None:
    assert parse_rate("0/0") is None and parse_rate("-25") is None and parse_rate(None) is None
    assert parse_rate(29.97) == Fraction(2997, 100)  # a float rate is taken as written
    assert blender_fps(Fraction(50)) == (50, 1.0)


def test_image_sequences(tmp_path: Path) -> None:
    for f in (1001, 1002, 1003, 1005):
        (tmp_path / f"plate.{f:04d}.exr").write_bytes(b"x")
    (tmp_path / "plate_other.0001.exr").write_bytes(b"x")
    seq = find_sequence(str(tmp_path / "plate.1003.exr"))
    assert (seq.first, seq.last, seq.padding, seq.missing, seq.frame_count) == (1001, 1005, 4, [1004], 5)
    assert seq.pattern.endswith("plate.%04d.exr")
    assert seq.files() == ["plate.1001.exr", "plate.1002.exr", "plate.1003.exr", "plate.1005.exr"]
    assert find_sequence(str(tmp_path / "plate_other.0001.exr")) is None  # alone: a single image
    (tmp_path / "still.jpg").write_bytes(b"x")
    assert find_sequence(str(tmp_path / "still.jpg")) is None


def test_pushed_shots_are_checked() -> None:
    good = {"shots": [{"mode": "strip", "asset": {"id": 3, "path": "/a.mov"}}], "from": "cli"}
    assert parse_shots(good)[0]["mode"] == "strip"
    for bad in ({}, {"shots": "x"}, {"shots": [1]}, {"shots": [{"mode": "nuke", "asset": {"id": 1, "path": "/a"}}]},
                {"shots": [{"asset": {"id": "1", "path": "/a"}}]}):
        with pytest.raises(ValueError):
            parse_shots(bad)
