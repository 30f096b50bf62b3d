"""Generated material with known truth for the sync tests and bench: speech-like babble, music-like notes and
drums, another microphone simulated (EQ, room, noise, clock drift, sample rate), files written with PyAV, and long
recordings streamed to disk in chunks so a 2-hour file never sits in memory."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import numpy as np
from scipy import signal as sps


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


def music(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Music-like sound: a melody of harmonic notes on a scale over sustained chords, with a drum pattern
    (decaying noise hits) at a steady tempo: tonal, repetitive in rhythm, as real music is (deterministic)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n)
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16]) / 12)
    beat = 60.0 / rng.uniform(90, 140)

    def note(f0: float, dur: float, amp: float, decay: float) -> np.ndarray:
        t = np.arange(int(dur * rate)) / rate
        env = np.minimum(1.0, t / 0.01) * np.exp(-t / decay)
        return amp * env * sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 6)
                               if f0 * k < rate / 2)

    def add(x: np.ndarray, at: float) -> None:
        i = int(at * rate)
        m = max(0, min(len(x), n - i))
        out[i:i + m] += x[:m]

    t = 0.0
    while t < seconds:   # melody
        dur = beat * rng.choice([0.5, 1.0, 1.0, 2.0])
        add(note(rng.choice(scale) * rng.choice([1, 2]), dur, rng.uniform(0.3, 0.6), dur / 2), t)
        t += dur
    t = 0.0
    while t < seconds:   # chords, one per bar
        root = rng.choice(scale[:5]) / 2
        for ratio in (1.0, 1.26, 1.5):
            add(note(root * ratio, 4 * beat, 0.15, 2 * beat), t)
        t += 4 * beat
    k = 0
    low = sps.butter(2, 200 / (rate / 2))
    while k * beat / 2 < seconds:   # kick on beats, hats on off-beats, an occasional fill
        m = int(0.12 * rate)
        hit = rng.normal(size=m) * np.exp(-np.arange(m) / (0.02 * rate))
        if k % 2 == 0:
            hit = sps.lfilter(*low, hit) * 4
        add(hit * (0.5 if rng.random() < 0.85 else 1.0), k * beat / 2)
        k += 1
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
    x = sps.fftconvolve(x, ir)[: len(x)]
    noise = rng.normal(size=len(x))
    noise *= np.sqrt(np.mean(x ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    y = x + noise
    return 0.5 * y / np.max(np.abs(y))


def write_stream(path: str | Path, blocks: Iterable[np.ndarray], rate: int, channels: int = 1,
                 codec: str | None = None, bit_rate: int | None = None) -> Path:
    """Mono float blocks (any sizes) to an audio file (codec by suffix: WAV/FLAC/M4A/MP3), encoded as they come."""
    path = Path(path)
    codec = codec or {".wav": "pcm_s16le", ".flac": "flac", ".mp3": "libmp3lame", ".m4a": "aac"}.get(
        path.suffix.lower(), "aac")
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if bit_rate:
            stream.codec_context.bit_rate = bit_rate
        fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
        size = stream.codec_context.frame_size or 4096
        pts = 0
        carry = np.zeros(0, dtype=np.float32)
        for block in itertools.chain(blocks, [None]):
            if block is not None:
                carry = np.concatenate([carry, np.asarray(block, dtype=np.float32)])
            while len(carry) >= size or (block is None and len(carry)):
                mono, carry = carry[:size], carry[size:]
                planar = np.repeat(np.clip(mono, -1, 1)[None, :], channels, axis=0)
                if fmt == "s16":
                    frame = av.AudioFrame.from_ndarray((planar.T * 32767).astype(np.int16).reshape(1, -1),
                                                       format="s16", layout=layout)
                else:
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar), format="fltp", layout=layout)
                frame.sample_rate = rate
                frame.pts = pts
                pts += len(mono)
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write(path: str | Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    return write_stream(path, [samples[i:i + 65536] for i in range(0, len(samples), 65536)], rate, channels)


CHUNK_S = 30.0


def long_source(seconds: float, rate: int, seed: int, start: float = 0.0) -> Iterator[np.ndarray]:
    """A long event, made in 30 s chunks (speech-like babble over music-like sound, a fresh seed per chunk so no
    stretch repeats) from `start` for `seconds`; the same (seed, time) always gives the same samples, so a clip
    can be cut from the event without ever holding the whole of it. Made at 16 kHz at most (interpolated up to
    `rate`): generating 2 hours at 48 kHz would take longer than syncing them."""
    gen = min(rate, 16000)
    end = start + seconds
    k = int(start // CHUNK_S)
    while k * CHUNK_S < end:
        chunk = babble(CHUNK_S, gen, seed * 100003 + k) + 0.6 * music(CHUNK_S, gen, seed * 100003 + k + 7)
        if gen != rate:
            chunk = np.interp(np.arange(round(CHUNK_S * rate)) / rate, np.arange(len(chunk)) / gen, chunk)
        c0 = k * CHUNK_S
        lo = max(0, round((start - c0) * rate))
        hi = min(len(chunk), round((end - c0) * rate))
        if hi > lo:
            yield (0.8 * chunk[lo:hi]).astype(np.float32)
        k += 1


def far_microphone(blocks: Iterable[np.ndarray], rate: int, *, snr_db: float, seed: int) -> Iterator[np.ndarray]:
    """A streamed other microphone for long files: band-pass EQ and noise. The EQ is a linear-phase FIR whose
    delay is taken out (its first `half` outputs dropped; feed `half` samples more), so the truth stays exact."""
    rng = np.random.default_rng(seed)
    taps = sps.firwin(2 * FIR_HALF + 1, [150, min(4500, 0.45 * rate)], pass_zero=False, fs=rate)
    zi = np.zeros(len(taps) - 1)
    skip = FIR_HALF
    for b in blocks:
        y, zi = sps.lfilter(taps, 1.0, b, zi=zi)
        if skip:
            y, skip = y[skip:], max(0, skip - len(y))
        rms = float(np.sqrt(np.mean(y ** 2))) if len(y) else 0.0
        y = y + rng.normal(size=len(y)) * (rms or 1e-3) / 10 ** (snr_db / 20)
        yield (0.5 * y).astype(np.float32)


FIR_HALF = 50


def make_long_pair(folder: str | Path, *, ref_seconds: float, clip_start: float, clip_seconds: float,
                   rate: int = 48000, seed: int = 1, snr_db: float = 10.0,
                   suffix: str = ".wav") -> tuple[Path, Path]:
    """A long recorder track and a camera clip cut from the same event at `clip_start` (another microphone:
    band-pass and noise), both streamed to disk."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ref = write_stream(folder / f"recorder_{ref_seconds:g}s{suffix}", long_source(ref_seconds, rate, seed), rate)
    clip = write_stream(folder / f"camera_{clip_seconds:g}s{suffix}",
                        far_microphone(long_source(clip_seconds + FIR_HALF / rate, rate, seed, start=clip_start),
                                       rate, snr_db=snr_db, seed=seed + 1), rate)
    return ref, clip
