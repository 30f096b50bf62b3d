"""Sync of what a shoot really hands over: a member that cannot be read, a damaged stretch in a recording, a
sound that repeats (no unique alignment), silence, a constant tone, 5.1 against mono, identical files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from bridge import synth
from bridge.sync import sync_files
from bridge.sync.decode import SyncInputError
from bridge.sync.testsignals import babble, other_microphone, write

RATE = 16000
CLI = [sys.executable, "-m", "bridge.cli.app"]


@pytest.fixture(scope="module")
def shoot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A 40 s recorder track and a 15 s camera clip that starts 10 s into it (another microphone, 10 dB SNR)."""
    d = tmp_path_factory.mktemp("shoot")
    src = babble(40, RATE, seed=1)
    ref = write(d / "recorder.wav", src, RATE)
    cam = write(d / "camA.wav", other_microphone(src, RATE, 10.0, 15.0, RATE, drift_ppm=0, snr_db=10, seed=2), RATE)
    return d, ref, cam


def by_name(results: list) -> dict:
    return {Path(r.path).name: r for r in results}


def test_a_member_that_cannot_be_read_is_reported_and_the_others_still_sync(shoot: tuple[Path, Path, Path]) -> None:
    d, ref, cam = shoot
    (d / "empty.wav").write_bytes(b"")
    (d / "junk.mov").write_bytes(b"\x00\x01not a movie" * 500)
    mute = synth.make_video(d / "mute.mp4", frames=25)   # video only: no audio stream
    files = [str(ref), str(d / "empty.wav"), str(cam), str(d / "junk.mov"), str(mute), str(d / "gone.wav")]
    results = sync_files(files)
    assert [r.path for r in results] == files   # the reference first, then the order given
    r = by_name(results)
    assert r["recorder.wav"].status == "reference"
    assert r["camA.wav"].status == "synced" and r["camA.wav"].offset_seconds == pytest.approx(10.0, abs=0.002)
    for name, why in [("empty.wav", "not readable"), ("junk.mov", "not readable"), ("mute.mp4", "no audio stream"),
                      ("gone.wav", "no such file")]:
        assert r[name].status == "unsynced" and r[name].offset_seconds is None, name
        assert why in r[name].reason and "\n" not in r[name].reason, (name, r[name].reason)
        assert r[name].reference == str(ref)


def test_the_cli_reports_an_unreadable_member_and_keeps_the_rest(shoot: tuple[Path, Path, Path]) -> None:
    d, ref, cam = shoot
    (d / "empty2.wav").write_bytes(b"")
    out = subprocess.run([*CLI, "sync", str(ref), str(cam), str(d / "empty2.wav"), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr  # the group is reported in full, but it is not all placed
    res = {Path(r["path"]).name: r for r in json.loads(out.stdout)["results"]}
    assert res["camA.wav"]["status"] == "synced"
    assert res["empty2.wav"]["status"] == "unsynced" and "not readable" in res["empty2.wav"]["reason"]


def test_nothing_readable_or_a_bad_reference_is_one_clear_error(shoot: tuple[Path, Path, Path]) -> None:
    d, ref, cam = shoot
    (d / "empty3.wav").write_bytes(b"")
    with pytest.raises(SyncInputError, match="not readable"):
        sync_files([str(d / "empty3.wav"), str(d / "missing.wav")])
    with pytest.raises(SyncInputError, match=r"missing\.wav: no such file"):   # one readable file: nothing to sync
        sync_files([str(ref), str(d / "missing.wav")])
    with pytest.raises(SyncInputError, match="not readable"):    # the chosen reference itself is bad
        sync_files([str(d / "empty3.wav"), str(ref), str(cam)], reference=str(d / "empty3.wav"))
    with pytest.raises(SyncInputError, match="not one of the files"):   # not silently another reference
        sync_files([str(ref), str(cam)], reference=str(d / "elsewhere.wav"))


def test_a_damaged_stretch_in_the_middle_does_not_stop_the_sync(shoot: tuple[Path, Path, Path]) -> None:
    """Bytes overwritten at three places inside an AAC camera track: the packets there fail to decode. The rest
    still places the clip at its true offset (the bad packets count as silence, so later audio keeps its place),
    where the whole group used to fail on the decode error."""
    d, ref, _cam = shoot
    src = babble(40, RATE, seed=1)
    good = write(d / "camB.m4a", other_microphone(src, RATE, 10.0, 15.0, RATE, drift_ppm=0, snr_db=10, seed=3), RATE)
    data = bytearray(good.read_bytes())
    rng = np.random.default_rng(1)
    for frac in (0.3, 0.5, 0.7):
        i = int(len(data) * frac)
        data[i:i + 3000] = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    bad = d / "camB_damaged.m4a"
    bad.write_bytes(bytes(data))
    r = by_name(sync_files([str(ref), str(bad)]))["camB_damaged.m4a"]
    assert r.status == "synced", r.reason
    assert r.offset_seconds == pytest.approx(10.0, abs=0.002)
    # all of its audio garbled: not a silent recording that matches nothing, but one that cannot be decoded
    garbled = garble_samples(data, rng, d / "camB_garbled.m4a")
    r = by_name(sync_files([str(ref), str(bad), str(garbled)]))
    assert r["camB_damaged.m4a"].status == "synced"
    assert r["camB_garbled.m4a"].status == "unsynced", r["camB_garbled.m4a"]
    assert "cannot decode its audio" in r["camB_garbled.m4a"].reason, r["camB_garbled.m4a"].reason


def garble_samples(data: bytearray, rng: np.random.Generator, out: Path) -> Path:
    """An .m4a with every audio sample byte random (the mdat box), its index intact: undecodable audio."""
    start, end = data.find(b"mdat") + 8, data.find(b"moov") - 4   # all the samples, not the index after them
    assert 0 < start < end
    data[start:end] = rng.integers(0, 256, end - start, dtype=np.uint8).tobytes()
    out.write_bytes(bytes(data))
    return out


def test_a_short_clip_whose_audio_is_all_garbled_cannot_be_decoded(shoot: tuple[Path, Path, Path]) -> None:
    """Fewer packets than the long-stream give-up count, none of which decodes: the stream used to end normally
    with only filler, and the clip was reported as sharing no sound instead of as undecodable."""
    d, ref, cam = shoot
    src = babble(40, RATE, seed=1)
    short = write(d / "camC.m4a", src[10 * RATE:int(10.8 * RATE)], RATE)   # 0.8 s: about a dozen AAC packets
    data = bytearray(short.read_bytes())
    with av.open(str(short)) as c:
        assert 0 < sum(1 for p in c.demux(c.streams.audio[0]) if p.size) < 50
    garbled = garble_samples(data, np.random.default_rng(4), d / "camC_garbled.m4a")
    r = by_name(sync_files([str(ref), str(cam), str(garbled)]))
    assert r["camA.wav"].status == "synced"
    assert r["camC_garbled.m4a"].status == "unsynced", r["camC_garbled.m4a"]
    assert "cannot decode its audio" in r["camC_garbled.m4a"].reason, r["camC_garbled.m4a"].reason


@pytest.mark.parametrize("period", [0.5, 1.0])
def test_a_repeating_sound_is_ambiguous_not_a_confident_wrong_offset(tmp_path: Path, period: float) -> None:
    """A metronome: every whole beat also passes the fine check, so there is no one offset. It used to be reported synced
    at the first beat tried (0.2 s or 3.7 s for a true 10.2 s) with a confidence in the hundreds."""
    t = np.arange(RATE * 30) / RATE
    beeps = (np.mod(t, period) < 0.05) * np.sin(2 * np.pi * 1000 * t) * 0.5
    ref = write(tmp_path / "click_ref.wav", beeps, RATE)
    cam = write(tmp_path / "click_cam.wav", beeps[int(10.2 * RATE):int(22.2 * RATE)], RATE)
    _ref, r = sync_files([str(ref), str(cam)])
    assert r.status == "unsynced" and r.offset_seconds is None
    assert r.reason.startswith("ambiguous"), r.reason
    assert r.confidence is not None and r.confidence < 5


def test_a_constant_tone_and_silence_are_unsynced(tmp_path: Path) -> None:
    t = np.arange(RATE * 20) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    a = write(tmp_path / "tone_a.wav", tone, RATE)
    b = write(tmp_path / "tone_b.wav", tone[3 * RATE:13 * RATE], RATE)
    quiet = write(tmp_path / "silent.wav", np.zeros(RATE * 10), RATE)
    res = by_name(sync_files([str(a), str(b), str(quiet)]))
    for name in ("tone_b.wav", "silent.wav"):
        assert res[name].status == "unsynced" and res[name].offset_seconds is None, name
        assert res[name].confidence is not None and res[name].confidence < 5, name


def test_surround_at_48k_against_mono_at_16k_and_a_clip_before_the_reference(tmp_path: Path) -> None:
    src = babble(80, RATE, seed=5)
    ref = write(tmp_path / "ref.wav", src[30 * RATE:60 * RATE], RATE)           # event 30..60 s
    cam = other_microphone(src, RATE, 20.0, 15.0, 48000, drift_ppm=0, snr_db=10, seed=2)   # event 20..35 s
    with av.open(str(tmp_path / "cam51.wav"), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=48000, layout="5.1")
        frame = av.AudioFrame.from_ndarray(np.repeat((cam * 32767).astype(np.int16)[None, :], 6, axis=0).T
                                           .reshape(1, -1), format="s16", layout="5.1")
        frame.sample_rate, frame.pts = 48000, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    _ref, r = sync_files([str(ref), str(tmp_path / "cam51.wav")], reference=str(ref))
    assert r.status == "synced", r.reason
    assert r.offset_seconds == pytest.approx(-10.0, abs=0.002)    # starts 10 s before the reference
    assert r.offset_samples == pytest.approx(-480000, abs=96)


def test_identical_files_sync_at_zero(shoot: tuple[Path, Path, Path]) -> None:
    d, ref, _cam = shoot
    copy = shutil.copy(ref, d / "recorder_copy.wav")
    _ref, r = sync_files([str(ref), str(copy)])
    assert r.status == "synced" and r.offset_seconds == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("start", [30.0, 35.0])   # 10 s and 5 s of the recorder's 40 s shared
def test_a_clip_that_runs_past_the_end_of_the_reference(tmp_path: Path, start: float) -> None:
    """The camera kept rolling after the recorder stopped: only the recorder's last seconds are shared. The fine
    window next to the recorder's end used to be searched only where it fits inside the recorder, which left
    out the true lag (the coarse step's overlap ran a few ms long): 2 of 3 windows agreed, and it was unsynced."""
    src = babble(100, RATE, seed=11)
    ref = write(tmp_path / "recorder.wav", src[20 * RATE:60 * RATE], RATE)   # the event's 20..60 s
    cam = write(tmp_path / "cam.wav", other_microphone(src, RATE, 20.0 + start, 15.0, RATE, drift_ppm=0, snr_db=10,
                                                       seed=3), RATE)
    _ref, r = sync_files([str(ref), str(cam)])
    assert r.status == "synced", (r.reason, r.windows)
    assert r.offset_seconds == pytest.approx(start, abs=0.002)


@pytest.mark.parametrize("dead", ["silence", "hiss"])
def test_a_longer_take_with_a_dead_microphone_does_not_become_the_reference(shoot: tuple[Path, Path, Path],
                                                                             dead: str) -> None:
    """A 90 s camera take whose microphone was off (digital silence, or only hiss) is the longest file. It used
    to be the default reference, so the recorder and the camera that share sound were both reported unsynced."""
    d, ref, cam = shoot
    quiet = np.zeros(90 * RATE) if dead == "silence" else 0.01 * np.random.default_rng(0).normal(size=90 * RATE)
    take = write(d / f"take_{dead}.wav", quiet, RATE)
    r = by_name(sync_files([str(take), str(cam), str(ref)]))
    assert r["recorder.wav"].status == "reference"
    assert r["camA.wav"].status == "synced" and r["camA.wav"].offset_seconds == pytest.approx(10.0, abs=0.002)
    assert r[take.name].status == "unsynced" and r[take.name].offset_seconds is None


def _camera_with_late_audio(path: Path, src: np.ndarray, event_start: float, delay: float) -> Path:
    """A 15 s camera MP4 whose audio stream starts `delay` s after its video (the corpus FLIR phone clip's does
    by 0.19 s, the Sony AVCHD's 0.08 s before): video frame 0 shows the event at `event_start`."""
    from fractions import Fraction

    rate = 48000
    t = np.arange(int((15 - delay) * rate)) / rate + event_start + delay
    x = np.interp(t, np.arange(len(src)) / RATE, src).astype(np.float32)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=rate, layout="mono")
        for i in range(25 * 15):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i % 255, np.uint8), format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        pts = round(delay * rate)
        for k in range(0, len(x), 1024):
            block = av.AudioFrame.from_ndarray(x[None, k:k + 1024], format="fltp", layout="mono")
            block.sample_rate, block.pts, block.time_base = rate, pts, Fraction(1, rate)
            pts += block.samples
            for packet in audio.encode(block):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    return path


def test_a_camera_whose_audio_starts_after_its_video_is_placed_by_its_video(shoot: tuple[Path, Path, Path]) -> None:
    """The offset (and the OTIO clip, and the frames) is where the file starts: its first video frame. It used to
    be where its audio starts, half a second late here (12 frames at 25 fps)."""
    d, ref, _cam = shoot
    src = babble(40, RATE, seed=1)   # the recorder's sound, which the camera heard from 9.5 s on
    clip = _camera_with_late_audio(d / "late_audio.mp4", src, 9.5, 0.5)
    _r, r = sync_files([str(ref), str(clip)])
    assert r.status == "synced", r.reason
    assert r.offset_seconds == pytest.approx(9.5, abs=0.002)
    assert r.offset_frames == pytest.approx(237.5, abs=0.05)
    # and as the reference: the recorder starts 9.5 s before the camera's first frame
    cam_ref, rec = sync_files([str(clip), str(ref)], reference=str(clip))
    assert cam_ref.status == "reference" and rec.offset_seconds == pytest.approx(-9.5, abs=0.002)
