"""Probe and thumbnails on bad input: special files named like media, names that
look like FFmpeg protocols, corrupt PNG chunks, and a real clip cut at many offsets."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from bridge import synth
from bridge.errors import ProbeError, ThumbnailError
from bridge.probe import probe_file
from bridge.thumbs import make_thumbnail

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
IPHONE = CORPUS / "video" / "phone" / "iphone6_with-gps.mov"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("kind", ["video", "image"])
def test_thumbnail_of_a_fifo_or_device_named_like_media_is_refused_as_not_a_file(tmp_path: Path,
                                                                                 kind: str) -> None:
    fifo = tmp_path / "capture.mp4"
    os.mkfifo(fifo)
    device = tmp_path / "zero.jpg"
    device.symlink_to("/dev/zero")
    for special in (fifo, device, tmp_path):
        with pytest.raises(ThumbnailError, match=r"^not a regular file$"):
            make_thumbnail(special, tmp_path / "t.jpg", kind=kind)
    assert not (tmp_path / "t.jpg").exists()


def test_thumbnail_of_a_relative_name_with_a_colon_is_read_as_a_file(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    synth.make_video(tmp_path / "take:1.mp4", frames=5, width=64, height=48)
    monkeypatch.chdir(tmp_path)
    for name in ("take:1.mp4", b"take:1.mp4"):
        info = make_thumbnail(name, tmp_path / "t.jpg", kind="video")  # not "Protocol not found"
        assert (info["width"], info["height"]) == (64, 48)
        assert probe_file(name)["kind"] == "video"


def test_probe_of_a_png_with_a_broken_chunk_gives_a_clean_one_line_reason(tmp_path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    data = bytearray(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 200))
                     + _chunk(b"IEND", b""))
    data[37:41] = b"I\xffAT"  # the IDAT chunk's type mangled
    bad = tmp_path / "broken.png"
    bad.write_bytes(bytes(data))
    with pytest.raises(ProbeError) as info:
        probe_file(bad)
    message = str(info.value)
    assert message.startswith("not a readable image") and "\n" not in message
    assert "<_io" not in message and "BufferedReader" not in message  # no Python object repr for users
    with pytest.raises(ThumbnailError):
        make_thumbnail(bad, tmp_path / "t.jpg", kind="image")


@pytest.mark.skipif(not IPHONE.exists(), reason="real-media corpus not present (../shared/corpus)")
@pytest.mark.parametrize("cut", [1, 8, 64, 4096, 50_000, 200_000, 430_000, -1])
def test_a_real_clip_cut_short_probes_and_thumbnails_or_fails_with_one_line(tmp_path: Path, cut: int) -> None:
    data = IPHONE.read_bytes()
    clip = tmp_path / "cut.mov"
    clip.write_bytes(data[:cut] if cut > 0 else data[: len(data) - 3000])
    try:
        probe = probe_file(clip)
    except ProbeError as exc:
        assert ("truncated" in str(exc) or "incomplete" in str(exc)) and "\n" not in str(exc)
    else:
        assert any("truncated" in w for w in probe["warnings"])
    try:
        make_thumbnail(clip, tmp_path / "t.jpg", kind="video")
    except ThumbnailError as exc:
        assert "\n" not in str(exc)
        assert not (tmp_path / "t.jpg").exists()
