"""Poster frames that show the shot (not black, not a flash), upright stills, clean failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bridge import synth
from bridge.errors import ThumbnailError
from bridge.thumbs import make_thumbnail


def luma(path: Path) -> tuple[float, float]:
    arr = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255
    return float(arr.mean()), float(arr.std())


def test_poster_skips_black_and_flash_frames(tmp_path: Path) -> None:
    # 0-1 s black (lens cap), 1-2 s white flash, 2-3 s fade, 3-6 s the shot. Keyframe every 6 frames.
    frames = synth.sequence((25, synth.solid(0)), (25, synth.solid(255)), (25, synth.solid(40)),
                            (75, synth.bars))
    clip = synth.make_video(tmp_path / "clip.mp4", frames=150, fps=25, width=320, height=180, frame_fn=frames, gop=6)
    info = make_thumbnail(clip, tmp_path / "t.jpg", kind="video", max_size=160)
    mean, std = luma(tmp_path / "t.jpg")
    assert 0.1 < mean < 0.9 and std > 0.1, (mean, std)
    assert info["time"] is not None and info["time"] >= 3.0
    assert info["rejected"] is None and info["candidates"] >= 5
    assert (info["width"], info["height"]) == (160, 90)


def test_all_black_clip_still_gets_a_thumbnail_with_a_low_score(tmp_path: Path) -> None:
    clip = synth.make_video(tmp_path / "black.mp4", frames=50, fps=25, width=64, height=48,
                            frame_fn=synth.solid(0), gop=5)
    info = make_thumbnail(clip, tmp_path / "t.jpg", kind="video")
    assert info["rejected"] == "black" and info["score"] < 0.2
    assert Image.open(tmp_path / "t.jpg").size == (64, 48)  # never upscaled


def test_sizes_and_formats(tmp_path: Path) -> None:
    clip = synth.make_video(tmp_path / "big.mov", frames=4, width=1280, height=720)
    make_thumbnail(clip, tmp_path / "a.jpg", kind="video", max_size=320)
    make_thumbnail(clip, tmp_path / "sub" / "a.webp", kind="video", max_size=200, fmt="webp")
    a, b = Image.open(tmp_path / "a.jpg"), Image.open(tmp_path / "sub" / "a.webp")
    assert (a.format, a.size) == ("JPEG", (320, 180))
    assert (b.format, b.size) == ("WEBP", (200, 113))


def test_exif_orientation_makes_a_portrait_still(tmp_path: Path) -> None:
    img = synth.make_image(tmp_path / "rot.jpg", width=640, height=480, exif={0x0112: 6})
    info = make_thumbnail(img, tmp_path / "t.jpg", kind="image", max_size=100)
    assert (info["width"], info["height"]) == (75, 100)


def test_transparent_and_16_bit_stills(tmp_path: Path) -> None:
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :30, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    Image.fromarray((np.arange(40 * 60).reshape(40, 60) * 20).astype(np.uint16)).save(tmp_path / "deep.tif")
    for name in ("alpha.png", "deep.tif"):
        info = make_thumbnail(tmp_path / name, tmp_path / f"{name}.jpg", kind="image")
        assert Image.open(tmp_path / f"{name}.jpg").mode == "RGB" and info["width"] == 60


def test_bad_input_fails_cleanly_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mov").write_text("hello " * 100)
    clip = synth.make_video(tmp_path / "ok.mp4", frames=30, width=64, height=48)
    (tmp_path / "cut.mp4").write_bytes(clip.read_bytes()[:300])
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    for name, kind in (("empty.mp4", "video"), ("text.mov", "video"), ("cut.mp4", "video"), ("bad.jpg", "image"),
                       ("ok.mp4", "audio")):
        dest = tmp_path / "out" / f"{name}.jpg"
        with pytest.raises(ThumbnailError) as err:
            make_thumbnail(tmp_path / name, dest, kind=kind)
        assert "\n" not in str(err.value)
        assert not dest.exists()
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no temp file left
    with pytest.raises(FileNotFoundError):
        make_thumbnail(tmp_path / "nope.mp4", tmp_path / "x.jpg", kind="video")


def test_corpus_videos_and_stills(corpus: Path, corpus_manifest: dict[str, dict[str, str]], tmp_path: Path) -> None:
    files = sorted((corpus / "video").rglob("*.*")) + sorted((corpus / "images").rglob("*.*"))
    for path in files:
        rel = path.relative_to(corpus).as_posix()
        kind = "image" if rel.startswith("images/") else "video"
        dest = tmp_path / (path.name + ".jpg")
        info = make_thumbnail(path, dest, kind=kind)
        mean, std = luma(dest)
        assert std > 0.03 and 0.05 < mean < 0.95, rel  # a real picture, not a black or white square
        assert max(info["width"], info["height"]) == 320, rel
    flir = Image.open(tmp_path / "flir_thermal.mp4.jpg")
    assert flir.height > flir.width  # portrait clip
    iphone = Image.open(tmp_path / "iphone6_with-gps.mov.jpg")
    assert iphone.height > iphone.width  # 568x320 coded, shown rotated
    samsung = Image.open(tmp_path / "samsung_gt-i9000_galaxy_s.jpg.jpg")
    assert "Orientation=6" in corpus_manifest["images/exif/samsung_gt-i9000_galaxy_s.jpg"]["probe_summary"]
    assert samsung.height > samsung.width
