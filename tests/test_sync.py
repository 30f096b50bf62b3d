"""Audio-waveform sync against known truth: the corpus pair, and pairs made from one source with a different
microphone simulated (EQ, reverb, noise at 0 dB SNR, 100 ppm clock drift, 16 vs 48 kHz)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bridge import synth
from bridge.sync import sync_files

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "audio" / "multicam"
CLI = [sys.executable, "-m", "bridge.cli.app"]


def babble(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Speech-like sound: syllable-rate bursts of formant-shaped noise with pauses (deterministic)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n)
    t = 0.0
    while t < seconds:
        dur = rng.uniform(0.08, 0.3)
        if rng.random() < 0.8:
            m = int(dur * rate)
            burst = rng.normal(size=m)
            spec = np.fft.rfft(burst)
            f = np.fft.rfftfreq(m, 1 / rate)
            shape = sum(np.exp(-((f - rng.uniform(lo, hi)) / bw) ** 2)
                        for lo, hi, bw in ((300, 900, 150), (900, 2500, 300), (2500, 4000, 400)))
            burst = np.fft.irfft(spec * shape, m) * np.hanning(m) * rng.uniform(0.3, 1.0)
            i = int(t * rate)
            out[i:i + m] += burst[: max(0, min(m, n - i))]
        t += dur + (rng.uniform(0.02, 0.5) if rng.random() < 0.3 else 0.02)
    return 0.3 * out / np.max(np.abs(out))


def other_microphone(src: np.ndarray, rate: int, start: float, seconds: float, out_rate: int, *, drift_ppm: float,
                     snr_db: float, seed: int, drr_db: float = 0.0) -> np.ndarray:
    """The same event heard by another device: a clock `drift_ppm` fast, band-limited EQ, a room (direct to
    reverberant ratio `drr_db`), noise at `snr_db`."""
    rng = np.random.default_rng(seed)
    t_file = np.arange(int(seconds * out_rate)) / out_rate
    t_true = start + t_file / (1 + drift_ppm * 1e-6)
    x = np.interp(t_true, np.arange(len(src)) / rate, src)
    f = np.fft.rfftfreq(len(x), 1 / out_rate)
    eq = 1 / (1 + (150 / np.maximum(f, 1)) ** 4) / (1 + (f / 4500) ** 4) * (1 + 1.5 * np.exp(-((f - 3000) / 600) ** 2))
    x = np.fft.irfft(np.fft.rfft(x) * eq, len(x))
    ir_t = np.arange(int(0.35 * out_rate)) / out_rate
    ir = rng.normal(size=len(ir_t)) * np.exp(-ir_t / 0.08)  # RT60 about 0.55 s
    ir[: int(0.002 * out_rate)] = 0.0
    ir *= np.sqrt(10 ** (-drr_db / 10) / np.sum(ir ** 2))   # reverberant energy against the direct sound
    ir[0] = 1.0
    x = np.convolve(x, ir)[: len(x)]
    noise = rng.normal(size=len(x))
    noise *= np.sqrt(np.mean(x ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    y = x + noise
    return 0.5 * y / np.max(np.abs(y))


def write(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    times = np.arange(len(samples)) / rate
    synth.make_audio(path, seconds=len(samples) / rate, sample_rate=rate, channels=channels,
                     signal=lambda t: np.interp(t, times, samples))
    return path


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.exists(), reason="needs ../shared/corpus (audio/multicam)")
def test_corpus_pair_within_a_millisecond() -> None:
    ref, other = sync_files([str(CORPUS / "timbl_1.mp3"), str(CORPUS / "timbl_2.mp3")])
    assert ref.status == "reference"
    assert other.status == "synced" and other.offset_seconds == pytest.approx(12.254, abs=0.001)
    assert other.offset_samples == pytest.approx(12.254 * 48000, abs=48)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".m4a"])
def test_a_different_microphone_with_drift_at_16k(tmp_path: Path, suffix: str) -> None:
    rate = 48000
    src = babble(60, rate, seed=1)
    ref = write(tmp_path / "recorder.wav", src, rate, channels=2)
    start, drift = 17.3217, 100.0
    cam = other_microphone(src, rate, start, 35.0, 16000, drift_ppm=drift, snr_db=0.0, seed=2)
    clip = write(tmp_path / f"camera{suffix}", cam, 16000)
    ref_r, res = sync_files([str(ref), str(clip)])
    assert ref_r.path == str(ref)  # the longest recording is the reference
    assert res.status == "synced", res.reason
    assert res.offset_seconds == pytest.approx(start, abs=0.005)
    assert res.drift_ppm == pytest.approx(drift, abs=25)
    assert res.offset_samples == round(res.offset_seconds * 16000)


def test_video_clip_gets_frames_at_its_rate(tmp_path: Path) -> None:
    rate = 48000
    src = babble(40, rate, seed=3)
    ref = write(tmp_path / "recorder.flac", src, rate)
    start = 6.5
    cam = other_microphone(src, rate, start, 20.0, rate, drift_ppm=0.0, snr_db=10.0, seed=4)
    times = np.arange(len(cam)) / rate
    video = synth.make_video(tmp_path / "cam.mp4", frames=20 * 25, fps=25, width=64, height=48,
                             audio=lambda t: np.interp(t, times, cam))
    _, res = sync_files([str(ref), str(video)])
    assert res.status == "synced" and res.offset_seconds == pytest.approx(start, abs=0.005)
    assert res.offset_frames == pytest.approx(start * 25, abs=0.15)


@pytest.mark.parametrize("seed", [5, 11, 17, 23])
def test_unrelated_recordings_are_not_given_an_offset(tmp_path: Path, seed: int) -> None:
    a = write(tmp_path / "a.wav", babble(40, 16000, seed=seed), 16000)
    b = write(tmp_path / "b.wav", babble(25, 16000, seed=seed + 1), 16000)
    _, res = sync_files([str(a), str(b)])
    assert res.status == "unsynced" and res.offset_seconds is None
    assert "no shared sound" in res.reason or "no consistent offset" in res.reason


def test_cli_sync_json(tmp_path: Path) -> None:
    src = babble(30, 16000, seed=7)
    a = write(tmp_path / "long.wav", src, 16000)
    b = write(tmp_path / "short.wav", src[int(4.25 * 16000): (20 * 16000)], 16000)
    done = subprocess.run([*CLI, "--catalog", str(tmp_path / "c.sqlite"), "sync", str(b), str(a), "--json",
                           "--otio", str(tmp_path / "group.otio")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["reference"] == str(a)
    (res,) = [r for r in doc["results"] if r["path"] == str(b)]
    assert res["status"] == "synced" and res["offset_seconds"] == pytest.approx(4.25, abs=0.001)
    # The OpenTimelineIO timeline an editor imports: the short file starts 4.25 s after the long one.
    import opentimelineio as otio

    tl = otio.adapters.read_from_file(str(tmp_path / "group.otio"))
    starts = {}
    for track in tl.tracks:
        (clip,) = [c for c in track if isinstance(c, otio.schema.Clip)]
        starts[clip.name] = track.range_of_child(clip).start_time.to_seconds()
        assert clip.media_reference.target_url.endswith(clip.name)
    assert starts["long.wav"] == 0 and starts["short.wav"] == pytest.approx(4.25, abs=1 / 25)
    bad = subprocess.run([*CLI, "sync", str(a), str(tmp_path / "missing.wav")], capture_output=True, text=True)
    assert bad.returncode != 0 and "missing.wav" in bad.stderr and "Traceback" not in bad.stderr
