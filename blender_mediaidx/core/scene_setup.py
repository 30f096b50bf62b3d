"""From the bridge's probe to Blender scene settings. No bpy: the bpy layer applies a ``PlateSettings``.

Frame rates stay exact rationals: 24000/1001 becomes ``fps=24000, fps_base=1001.0`` (not 24 / 1.001, which
Blender would store as a rounded float), so a 23.976 plate and the scene agree to the frame over an hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

# Blender's enum for input colour spaces differs between versions; these are 5.0 names, checked at apply time.
SRGB = "sRGB"
REC1886 = "Rec.1886"
LINEAR_REC709 = "Linear Rec.709"
REC2100_PQ = "Rec.2100-PQ"
REC2100_HLG = "Rec.2100-HLG"
NON_COLOR = "Non-Color"
LINEAR_EXTS = {"exr", "hdr"}


@dataclass
class PlateSettings:
    """What a plate asks of a scene."""

    fps: int
    fps_base: float
    frame_count: int
    frame_start: int
    width: int
    height: int
    pixel_aspect_x: float = 1.0
    pixel_aspect_y: float = 1.0
    colorspace: str = SRGB
    colorspace_fallbacks: tuple[str, ...] = (SRGB,)
    timecode: str | None = None

    @property
    def frame_end(self) -> int:
        return self.frame_start + max(self.frame_count, 1) - 1

    @property
    def rate(self) -> Fraction:
        return Fraction(self.fps) / Fraction(self.fps_base).limit_denominator(1_000_000)


def parse_rate(value: str | float | int | None) -> Fraction | None:
    """'24000/1001', '25', 25.0 -> an exact Fraction; None for missing or nonsense (0/0, negative)."""
    if value is None:
        return None
    try:
        rate = Fraction(value) if not isinstance(value, float) else Fraction(value).limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def blender_fps(rate: Fraction) -> tuple[int, float]:
    """Blender's (fps, fps_base) for an exact rate; integer rates keep base 1."""
    if rate.denominator == 1:
        return rate.numerator, 1.0
    num, den = rate.numerator, rate.denominator
    if num > 32767:  # scene.render.fps is a short: scale down keeping the ratio as exact as it can be
        scale = math.ceil(num / 32767)
        return round(num / scale), den / scale
    return num, float(den)


def scene_rate(fps: int, fps_base: float) -> Fraction:
    """The exact rate of a scene's (fps, fps_base): the inverse of blender_fps."""
    return Fraction(fps) / Fraction(fps_base).limit_denominator(1001)


def video_stream(probe: dict[str, Any] | None) -> dict[str, Any] | None:
    for s in (probe or {}).get("streams", []) or []:
        if s.get("type") == "video" and not (s.get("disposition") and "attached_pic" in s["disposition"]):
            return s
    return None


def frame_count(asset: dict[str, Any], rate: Fraction) -> int:
    """Frames in the plate: the stream's count when the container states it, else duration x rate."""
    v = video_stream(asset.get("probe")) or {}
    n = v.get("frame_count")
    if isinstance(n, int) and n > 0:
        return n
    duration = v.get("duration") or asset.get("duration") or ((asset.get("probe") or {}).get("format") or {}).get(
        "duration")
    if duration:
        return max(1, round(float(duration) * rate))
    return 1


def choose_colorspace(asset: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(best colour space name, fallbacks in order) for the plate."""
    if (asset.get("ext") or "").lower() in LINEAR_EXTS:
        return LINEAR_REC709, ("Linear", SRGB)
    v = video_stream(asset.get("probe")) or {}
    hdr = v.get("hdr")
    if hdr == "pq" or v.get("color_transfer") == "smpte2084":
        return REC2100_PQ, (REC1886, SRGB)
    if hdr == "hlg" or v.get("color_transfer") == "arib-std-b67":
        return REC2100_HLG, (REC1886, SRGB)
    if asset.get("kind") == "video" and v.get("color_transfer") in ("bt709", "bt1886", "smpte170m", "bt470bg"):
        return REC1886, (SRGB,)
    return SRGB, (SRGB,)


def plate_settings(asset: dict[str, Any], *, start_frame: int = 1,
                   default_rate: Fraction = Fraction(24)) -> PlateSettings:
    """Scene settings for an asset dict (with ``probe``) as the bridge sends it."""
    v = video_stream(asset.get("probe")) or {}
    rate = parse_rate(v.get("frame_rate")) or parse_rate(asset.get("fps")) or default_rate
    fps, base = blender_fps(rate)
    width = v.get("display_width") or v.get("width") or asset.get("width") or 1920
    height = v.get("display_height") or v.get("height") or asset.get("height") or 1080
    sar = parse_rate(v.get("sample_aspect_ratio")) or Fraction(1)
    if sar != 1 and v.get("width") and v.get("height"):
        # Anamorphic: the probe's display size already has the squeeze undone, and the scene's pixel aspect
        # undoes it again. Blender's clip keeps the stored pixels, so the scene takes those (turned like the
        # display for a rotated phone clip) and the pixel aspect alone widens them.
        width, height = v["width"], v["height"]
        if v.get("rotation") in (90, -90, 270, -270):
            width, height, sar = height, width, 1 / sar
    px, py = (float(sar), 1.0) if sar >= 1 else (1.0, float(1 / sar))
    cs, fallbacks = choose_colorspace(asset)
    count = frame_count(asset, rate) if asset.get("kind") != "image" else 1
    return PlateSettings(fps=fps, fps_base=base, frame_count=count, frame_start=start_frame, width=int(width),
                         height=int(height), pixel_aspect_x=px, pixel_aspect_y=py, colorspace=cs,
                         colorspace_fallbacks=fallbacks, timecode=(asset.get("probe") or {}).get("timecode"))


def pick_colorspace(wanted: str, fallbacks: tuple[str, ...], available: set[str]) -> str:
    """The first of wanted + fallbacks this Blender knows (names change between versions)."""
    for name in (wanted, *fallbacks):
        if name in available:
            return name
    return SRGB if SRGB in available else sorted(available)[0]
