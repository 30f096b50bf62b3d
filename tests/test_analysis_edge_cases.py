"""Video analysis on what studios really have: a damaged stretch in the middle, 1-frame and all-black clips, a
rotated phone clip, and the catalog path (`mediaidx analyze`) when the file changed since its scan, vanished,
is audio only, or was analysed already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from bridge import MediaIndexer, synth
from bridge.analysis import analyze_video, write_contact_sheet, write_hero, write_keyframes
from bridge.analysis.synthclips import Segment, make_clip
from bridge.errors import UsageError

CLI = [sys.executable, "-m", "bridge.cli.app"]
SEGMENTS = [Segment("testsrc2", 60), Segment("smptebars", 75), Segment("mandelbrot", 75, "cut"),
            Segment("rgbtestsrc", 50, "cut")]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("edge") / "cuts.mkv"
    make_clip(path, SEGMENTS)
    return path


def test_frame_numbers_after_a_damaged_stretch_keep_their_place(clip: Path, tmp_path: Path) -> None:
    """Bytes overwritten in the middle of a Matroska file: the demuxer resyncs past them and silently drops
    about 50 frames. Shots after the damage used to be numbered from the frames decoded (the last cut at frame
    154 while its time said 210), so a shot's frame range pointed at the wrong pictures in an editor."""
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(0)
    for frac in (0.4, 0.6):
        i = int(len(data) * frac)
        data[i:i + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    a = analyze_video(damaged)
    fps = a.shots.info.fps
    decoded = len(a.shots.stats.index)
    assert decoded < 250, "the damage should cost frames; if not, this test no longer tests anything"
    assert a.shots.frames == 260
    for s in a.shots.shots:
        assert s.start_frame == round(s.start_time * fps), s.to_dict()
    assert [s.start_frame for s in a.shots.shots][:3] == [0, 60, 135]
    for p in a.keyframes:
        assert p.frame == round(p.time * fps)
    assert write_hero(a, tmp_path / "hero.jpg") is not None
    assert len(write_keyframes(a, tmp_path / "kf")) == len(a.keyframes)


@pytest.mark.parametrize(("frames", "fn", "rejected"), [(1, synth.bars, None), (30, synth.solid(0), "black")])
def test_a_one_frame_and_an_all_black_clip(tmp_path: Path, frames: int, fn, rejected: str | None) -> None:
    path = synth.make_video(tmp_path / "c.mp4", frames=frames, frame_fn=fn)
    a = analyze_video(path)
    assert len(a.shots.shots) == 1 and a.shots.frames == frames
    assert a.hero is not None and a.hero.scores["rejected"] == rejected   # the only choice, and said why
    assert write_hero(a, tmp_path / "h.jpg") is not None
    assert write_contact_sheet(a, tmp_path / "s.jpg").is_file()


def test_a_rotated_phone_clip_gives_upright_pictures(tmp_path: Path) -> None:
    """Coded 128x64 landscape with a display rotation of 90 (shown portrait): the hero and key frames are
    portrait, the coded frame's bright left edge at the bottom, as players show it."""
    path = tmp_path / "phone.mov"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 128, 64, "yuv420p"
        vs.set_display_rotation(90)
        for i in range(25):
            img = np.random.default_rng(i).integers(0, 128, (64, 128, 3), dtype=np.uint8)
            img[:, :32] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
    a = analyze_video(path)
    assert a.rotation == 90
    hero = np.asarray(Image.open(write_hero(a, tmp_path / "hero.jpg")))
    assert hero.shape[:2] == (128, 64)
    assert hero[-20:].mean() > 240 and hero[:20].mean() < 128
    assert all(p.image.shape[0] > p.image.shape[1] for p in a.keyframes)


def _library(tmp_path: Path, clip: Path) -> tuple[MediaIndexer, Path]:
    root = tmp_path / "media"
    root.mkdir()
    (root / "a.mkv").write_bytes(clip.read_bytes())
    (root / "copy_of_a.mkv").write_bytes(clip.read_bytes())   # same content: shares a's hero file
    synth.make_audio(root / "tone.wav", seconds=0.5)
    ix = MediaIndexer(tmp_path / "c.sqlite", cache_dir=tmp_path / "cache")
    ix.scan(root, analyze=True)
    return ix, root


def test_a_file_changed_since_its_scan_is_not_analysed_under_its_old_content(clip: Path, tmp_path: Path) -> None:
    """a.mkv is overwritten by another clip and analysed before a rescan. Its analysis used to be filed under
    the old content's fingerprint: the copy's hero image (the same file in the cache) became a picture of the
    other clip, and a.mkv's shots were those of the new file while the catalog still described the old one."""
    ix, root = _library(tmp_path, clip)
    with ix:
        a, copy = ix.get(str(root / "a.mkv")).id, ix.get(str(root / "copy_of_a.mkv")).id
        hero = ix.hero_image(copy)
        assert hero is not None
        before, shots = hero.read_bytes(), ix.shots(a)
        synth.make_video(root / "a.mkv", frames=30, frame_fn=synth.solid(0))
        with pytest.raises(UsageError, match="changed since it was scanned"):
            ix.analyze(a, dry_run=True)
        with pytest.raises(UsageError, match="changed since it was scanned"):
            ix.analyze(a)
        assert ix.hero_image(copy).read_bytes() == before and ix.shots(a) == shots
        # after a rescan it is analysed as what it now is
        ix.scan(root)
        res = ix.analyze(a)
        assert res["error"] is None and res["shots"] == 1 and ix.hero_image(copy).read_bytes() == before


def test_reanalysing_an_unchanged_clip_does_no_work_and_errors_are_one_line(clip: Path, tmp_path: Path) -> None:
    ix, root = _library(tmp_path, clip)
    cat = tmp_path / "c.sqlite"
    with ix:
        a = ix.get(str(root / "a.mkv")).id
        hero = ix.hero_image(a)
        stamp = hero.stat().st_mtime_ns
        catalog_before = cat.read_bytes()
        plan = ix.analyze(a, dry_run=True)
        assert plan["dry_run"] and plan["plan"] == [] and plan["up_to_date"]
        res = ix.analyze(a)
        assert res["up_to_date"] and res["shots"] == 4 and res["hero"] == str(hero) and res["error"] is None
        assert hero.stat().st_mtime_ns == stamp and cat.read_bytes() == catalog_before
        # the hero file deleted from the cache: analysed again
        hero.unlink()
        res = ix.analyze(a)
        assert not res.get("up_to_date") and res["hero"] == str(hero) and hero.is_file()

    base = [*CLI, "--catalog", str(cat), "--cache-dir", str(tmp_path / "cache"), "analyze"]
    done = subprocess.run([*base, str(a), "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["up_to_date"], done.stderr
    tone = subprocess.run([*base, str(root / "tone.wav")], capture_output=True, text=True, timeout=120)
    assert tone.returncode == 2 and "is an audio, not a video" in tone.stderr, tone.stderr
    os.unlink(root / "a.mkv")
    gone = subprocess.run([*base, str(a)], capture_output=True, text=True, timeout=120)
    assert gone.returncode != 0 and "Traceback" not in gone.stderr
    assert f"{root / 'a.mkv'}: No such file" in gone.stderr and "b'" not in gone.stderr, gone.stderr


def test_a_picture_name_with_another_extension_is_refused_not_written_as_jpeg(clip: Path, tmp_path: Path) -> None:
    """`hero --out h.gif` used to write JPEG bytes under a .gif name (and .bmp, .tif...): a mislabelled file."""
    for cmd, name in [("hero", "h.gif"), ("contact-sheet", "sheet.bmp"), ("hero", "noext")]:
        r = subprocess.run([*CLI, cmd, str(clip), "--out", str(tmp_path / name)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2 and "give a .jpg, .png or .webp name" in r.stderr, (cmd, r.stderr)
        assert "Traceback" not in r.stderr and not (tmp_path / name).exists()
    r = subprocess.run([*CLI, "hero", str(clip), "--out", str(tmp_path / "h.PNG")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "h.PNG").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
