"""A still plate's pixel aspect in the probe: EXR (pixelAspectRatio), DPX (the orientation header's pixel aspect
ratio) and PNG (pHYs) report `sample_aspect_ratio` on their stream, the key and format a movie's has, so the
importer and `mediaidx track` de-squeeze an anamorphic image sequence as they do an anamorphic movie. Square
pixels report no other ratio; a cut-short header reports none and never crashes the probe."""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from blender_mediaidx.tracking.plan import pixel_aspect_from_probe
from bridge.errors import ProbeError
from bridge.probe import probe_file
from bridge.probe.source import open_source

W, H = 64, 32


def ffmpeg_still(path: Path, codec: str, pix_fmt: str, sar: Fraction | None) -> Path:
    """One image written by FFmpeg's encoder (what `ffmpeg -i plate.mov plate.%04d.exr` writes)."""
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        rgb = np.random.default_rng(1).integers(0, 255, (H, W, 3), dtype=np.uint8)
        out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)))
        out.mux(stream.encode())
    return path


def _attr(name: str, kind: str, value: bytes) -> bytes:
    return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value


def minimal_exr(path: Path, pixel_aspect: float) -> Path:
    """A valid one-channel (Y, half) uncompressed scanline OpenEXR written by hand, as OpenEXR lays it out
    (attributes in name order), so the test does not depend on FFmpeg's own EXR writer."""
    box = struct.pack("<4i", 0, 0, W - 1, H - 1)
    header = b"".join((
        b"\x76\x2f\x31\x01", struct.pack("<i", 2),
        _attr("channels", "chlist", b"Y\0" + struct.pack("<iB3xii", 1, 0, 1, 1) + b"\0"),
        _attr("compression", "compression", b"\0"),
        _attr("dataWindow", "box2i", box),
        _attr("displayWindow", "box2i", box),
        _attr("lineOrder", "lineOrder", b"\0"),
        _attr("pixelAspectRatio", "float", struct.pack("<f", pixel_aspect)),
        _attr("screenWindowCenter", "v2f", struct.pack("<2f", 0, 0)),
        _attr("screenWindowWidth", "float", struct.pack("<f", 1)),
        b"\0",
    ))
    row = np.linspace(0, 1, W, dtype=np.float16).tobytes()
    first = len(header) + 8 * H
    offsets = struct.pack(f"<{H}Q", *(first + y * (8 + len(row)) for y in range(H)))
    lines = b"".join(struct.pack("<ii", y, len(row)) + row for y in range(H))
    path.write_bytes(header + offsets + lines)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_phys(path: Path, x: int, y: int, unit: int, *, padding: int = 0) -> Path:
    """A PNG (Pillow's) with a pHYs chunk of ``x`` and ``y`` pixels per unit (unit 1: metre, 0: aspect only)
    spliced in after IHDR; ``padding`` bytes of text before it push pHYs past the first 8 KiB the probe reads up
    front. Pillow itself only writes pHYs from a dpi, rounded."""
    Image.new("RGB", (W, H), (90, 120, 150)).save(path)
    data = path.read_bytes()
    extra = _chunk(b"tEXt", b"Comment\0" + b"x" * padding) if padding else b""
    extra += _chunk(b"pHYs", struct.pack(">IIB", x, y, unit))
    path.write_bytes(data[:33] + extra + data[33:])  # signature (8) + IHDR (25)
    return path


def stream_sar(path: Path) -> str | None:
    (stream,) = [s for s in probe_file(path)["streams"] if s["type"] == "video"]
    return stream.get("sample_aspect_ratio")


@pytest.mark.parametrize(("codec", "ext", "pix_fmt"), [("exr", "exr", "gbrpf32le"), ("dpx", "dpx", "rgb48le")])
@pytest.mark.parametrize("sar", [Fraction(2), Fraction(4, 3)])
def test_exr_and_dpx_report_their_pixel_aspect(tmp_path: Path, codec: str, ext: str, pix_fmt: str,
                                               sar: Fraction) -> None:
    path = ffmpeg_still(tmp_path / f"plate.1001.{ext}", codec, pix_fmt, sar)
    probe = probe_file(path)
    assert probe["kind"] == "image"
    (stream,) = probe["streams"]
    assert stream["sample_aspect_ratio"] == f"{sar.numerator}/{sar.denominator}"
    assert (stream["width"], stream["display_width"]) == (W, round(W * sar))
    # what the importer and the tracking camera take
    assert pixel_aspect_from_probe(probe) == pytest.approx(float(sar))


def test_an_exr_not_written_by_ffmpeg_reports_its_pixel_aspect(tmp_path: Path) -> None:
    assert stream_sar(minimal_exr(tmp_path / "a.exr", 2.0)) == "2/1"
    assert stream_sar(minimal_exr(tmp_path / "b.exr", 4 / 3)) == "4/3"


@pytest.mark.parametrize(("codec", "ext", "pix_fmt"), [("exr", "exr", "gbrpf32le"), ("dpx", "dpx", "rgb48le")])
def test_square_exr_and_dpx_report_no_other_ratio(tmp_path: Path, codec: str, ext: str, pix_fmt: str) -> None:
    for sar in (None, Fraction(1)):
        path = ffmpeg_still(tmp_path / f"sq{sar}.{ext}", codec, pix_fmt, sar)
        assert stream_sar(path) in (None, "1/1")
        assert pixel_aspect_from_probe(probe_file(path)) == 1.0
    assert stream_sar(minimal_exr(tmp_path / "sq.exr", 1.0)) in (None, "1/1")


@pytest.mark.parametrize(("x", "y", "expected"), [
    (2835, 5670, "2/1"),  # twice as many pixels per metre down as across: 2:1 pixels (the PNG spec, libpng)
    (3780, 5040, "4/3"),
    (5906, 2953, "1/2"),
])
def test_png_phys_gives_the_pixel_aspect(tmp_path: Path, x: int, y: int, expected: str) -> None:
    path = png_with_phys(tmp_path / "a.png", x, y, 1)
    probe = probe_file(path)
    (stream,) = probe["streams"]
    assert stream["sample_aspect_ratio"] == expected
    assert stream["display_width"] == round(W * Fraction(expected)) and stream["display_height"] == H
    assert probe["image"]["width"] == W  # the stored pixels, as Blender reads them
    assert pixel_aspect_from_probe(probe) == pytest.approx(float(Fraction(expected)))


def test_png_phys_after_a_large_chunk_is_found(tmp_path: Path) -> None:
    assert stream_sar(png_with_phys(tmp_path / "a.png", 2835, 5670, 1, padding=20_000)) == "2/1"


def test_an_aspect_only_phys_is_not_read(tmp_path: Path) -> None:
    """Unit 0 has no agreed direction in practice: FFmpeg writes SAR 2 as x=2, y=1 (a 1/2 squeeze by the spec)."""
    assert stream_sar(png_with_phys(tmp_path / "a.png", 3, 4, 0)) is None
    ffmpeg_png = ffmpeg_still(tmp_path / "ffmpeg.png", "png", "rgb24", Fraction(2))
    phys = ffmpeg_png.read_bytes().split(b"pHYs", 1)[1][:9]
    assert struct.unpack(">IIB", phys) == (2, 1, 0)  # what FFmpeg wrote for a 2x squeeze
    assert stream_sar(ffmpeg_png) is None


def test_square_png_reports_no_ratio(tmp_path: Path) -> None:
    assert stream_sar(png_with_phys(tmp_path / "dpi.png", 2835, 2835, 1)) is None  # 72 dpi both ways
    Image.new("RGB", (W, H)).save(tmp_path / "plain.png")
    assert stream_sar(tmp_path / "plain.png") is None
    bad = png_with_phys(tmp_path / "zero.png", 0, 2835, 1)  # nonsense: no ratio, no crash
    assert stream_sar(bad) is None


def _cut(src: Path, dest: Path, n: int) -> Path:
    dest.write_bytes(src.read_bytes()[:n])
    return dest


def _sar_or_error(path: Path) -> str | None:
    """The probe's ratio, or None when it refuses the file with its one-line ProbeError (never another error)."""
    try:
        probe = probe_file(path)
    except ProbeError as exc:
        assert "\n" not in str(exc)
        return None
    return next((s.get("sample_aspect_ratio") for s in probe["streams"] if s["type"] == "video"), None)


def test_a_truncated_header_reports_no_ratio_and_does_not_crash(tmp_path: Path) -> None:
    from bridge.probe.image import png_sample_aspect

    exr = minimal_exr(tmp_path / "full.exr", 2.0)
    cut_at = exr.read_bytes().index(b"pixelAspectRatio") + 20  # inside the attribute
    for n in (8, 40, cut_at):
        assert _sar_or_error(_cut(exr, tmp_path / f"cut{n}.exr", n)) is None
    dpx = ffmpeg_still(tmp_path / "full.dpx", "dpx", "rgb48le", Fraction(2))
    for n in (40, 1000, 1630):  # 1628: the pixel aspect ratio fields
        assert _sar_or_error(_cut(dpx, tmp_path / f"cut{n}.dpx", n)) is None
    png = png_with_phys(tmp_path / "full.png", 2835, 5670, 1)
    at = png.read_bytes().index(b"pHYs")
    for n in (20, at + 2, at + 8):  # in IHDR, in the pHYs type, in its data
        cut = _cut(png, tmp_path / f"cut{n}.png", n)
        assert _sar_or_error(cut) is None
        src = open_source(cut, None)  # the header reader alone, whatever Pillow makes of the file
        try:
            assert png_sample_aspect(src) is None
        finally:
            src.close()


def test_a_still_without_a_ratio_in_its_stream_keeps_the_scene_square(tmp_path: Path) -> None:
    """The import path's rule for stills: no ratio, pixel aspect 1 (nothing is guessed from the size)."""
    Image.new("RGB", (1440, 1080)).save(tmp_path / "hdv_size.png")
    assert pixel_aspect_from_probe(probe_file(tmp_path / "hdv_size.png")) == 1.0
