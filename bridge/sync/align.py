"""Offsets between recordings, coarse to fine.

1. Coarse: onset envelopes (rise of log energy, 200 per second) of whole files, FFT cross-correlated over every
   lag; the peak's prominence over the rest of the correlation (a robust z-score) is the confidence.
2. Fine: GCC-PHAT (whitened cross-spectrum: robust to different microphones, EQ and reverb) on short windows
   at 16 kHz around the coarse answer, with parabolic interpolation of the peak.
3. Drift: the fine offset at several points along the overlap, fitted with a line: its slope is the clock
   drift (ppm), its value at the clip's start the offset. Most windows must agree with that line within 3 ms;
   if they do not (or the coarse peak is weak) the file is "unsynced", never given a guessed offset.

Why our own numpy code: audio-offset-finder loops over lags in Python at 16 ms resolution, syncstart only
looks at the first seconds; neither fits drift. Memory stays bounded: whole files only as envelopes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from . import decode

ENV_RATE = 200          # envelope values per second
FINE_RATE = 16000       # Hz for the fine pass
MIN_CONFIDENCE = 5.0    # robust z-score of the coarse peak below which a pair is "unsynced" at once
AGREE_S = 0.003         # fine windows must agree on one offset line within this


@dataclass
class SyncResult:
    path: str
    reference: str
    status: str                              # "reference", "synced", "unsynced"
    offset_seconds: float | None = None      # where this file starts on the reference's timeline
    offset_samples: int | None = None        # the same at this file's sample rate
    offset_frames: float | None = None       # the same in frames at this file's (or the reference's) video rate
    confidence: float | None = None          # robust z-score of the coarse correlation peak
    drift_ppm: float | None = None           # this file's clock against the reference's (+: runs fast, i.e. its
                                             # seconds are short); None when the overlap is too short to tell
    windows: list[dict[str, float]] = field(default_factory=list)
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def onset_envelope(log_energy: np.ndarray) -> np.ndarray:
    """Half-wave rectified rise of log energy, z-scored: level- and EQ-independent, sharp at onsets."""
    if log_energy.size < 3:
        return np.zeros(0, dtype=np.float64)
    rise = np.maximum(np.diff(log_energy.astype(np.float64)), 0.0)
    rise -= rise.mean()
    sd = rise.std()
    return rise / sd if sd > 0 else rise


def xcorr(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-correlation c[k] = sum a[n + k] b[n] for every lag k in -(len(b)-1) .. len(a)-1 (FFT)."""
    n = len(a) + len(b) - 1
    size = 1 << (n - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    lags = np.concatenate([np.arange(0, len(a)), np.arange(-(len(b) - 1), 0)])
    vals = np.concatenate([c[: len(a)], c[size - (len(b) - 1):]])
    order = np.argsort(lags)
    return lags[order], vals[order]


def coarse_offset(env_ref: np.ndarray, env_other: np.ndarray, min_overlap_s: float = 3.0) -> tuple[float, float]:
    """(offset in seconds of `other` on the reference's timeline, confidence)."""
    a, b = onset_envelope(env_ref), onset_envelope(env_other)
    if a.size < ENV_RATE or b.size < ENV_RATE:
        return 0.0, 0.0
    lags, c = xcorr(a, b)
    # normalise by the overlap so partial overlaps at the ends do not win on length alone
    overlap = np.minimum(len(a), lags + len(b)) - np.maximum(0, lags)
    ok = overlap >= min(min_overlap_s * ENV_RATE, 0.5 * min(len(a), len(b)))
    score = np.where(ok, c / np.sqrt(np.maximum(overlap, 1)), 0.0)
    k = int(np.argmax(score))
    valid = score[ok]
    # prominence against the rest, excluding the peak's neighbourhood
    mask = np.abs(lags[ok] - lags[k]) > ENV_RATE // 10
    rest = valid[mask]
    med = float(np.median(rest))
    mad = float(np.median(np.abs(rest - med))) * 1.4826 or 1e-9
    return float(lags[k]) / ENV_RATE, (float(score[k]) - med) / mad


def _tukey(n: int, alpha: float = 0.1) -> np.ndarray:
    w = np.ones(n)
    edge = max(1, int(alpha * n / 2))
    ramp = 0.5 * (1 - np.cos(np.pi * np.arange(edge) / edge))
    w[:edge], w[n - edge:] = ramp, ramp[::-1]
    return w


def gcc_phat(ref: np.ndarray, seg: np.ndarray, rate: int) -> tuple[float, float]:
    """Position (seconds) of `seg` inside `ref` by GCC-PHAT with parabolic peak interpolation; and the peak's
    prominence (z-score), a per-window quality."""
    n = len(ref) + len(seg)
    size = 1 << (n - 1).bit_length()
    # taper both ends: whitening turns abrupt window edges into false broadband peaks
    ref = ref * _tukey(len(ref))
    seg = seg * _tukey(len(seg))
    spec = np.fft.rfft(ref, size) * np.conj(np.fft.rfft(seg, size))
    spec /= np.maximum(np.abs(spec), 1e-12)
    c = np.fft.irfft(spec, size)[: max(1, len(ref) - len(seg) + 1)]
    k = int(np.argmax(c))
    frac = 0.0
    if 0 < k < len(c) - 1:
        y0, y1, y2 = c[k - 1], c[k], c[k + 1]
        den = y0 - 2 * y1 + y2
        frac = 0.5 * (y0 - y2) / den if den != 0 else 0.0
    sd = float(c.std()) or 1e-12
    return (k + frac) / rate, float((c[k] - c.mean()) / sd)


def _frames(seconds: float, fps: str | None) -> float | None:
    if not fps:
        return None
    return float(Fraction(fps) * Fraction(seconds).limit_denominator(10 ** 7))


def sync_pair(ref: str, other: str, *, env_ref: np.ndarray | None = None, ref_info: decode.AudioInfo | None = None,
              other_info: decode.AudioInfo | None = None, windows: int = 5, window_s: float = 6.0) -> SyncResult:
    ref_info = ref_info or decode.info(ref)
    oinfo = other_info or decode.info(other)
    env_r = env_ref if env_ref is not None else decode.envelope(ref)
    env_o = decode.envelope(other)
    result = SyncResult(path=other, reference=ref, status="unsynced")
    coarse, conf = coarse_offset(env_r, env_o)
    result.confidence = round(conf, 2)
    if conf < MIN_CONFIDENCE:
        result.reason = (f"no shared sound found (confidence {conf:.1f} < {MIN_CONFIDENCE:g}): different events, "
                         "silence or too short")
        return result
    # the overlap on the other file's own timeline
    o_len = len(env_o) / ENV_RATE
    r_len = len(env_r) / ENV_RATE
    start = max(0.0, -coarse)
    end = min(o_len, r_len - coarse)
    span = end - start
    if span < 1.0:
        result.reason = "the recordings overlap by less than a second"
        return result
    w = min(window_s, span)
    n = max(1, min(windows, int(span // w)))
    margin = 0.25 + 2e-4 * span  # covers the coarse step and up to 200 ppm of drift over the overlap
    points: list[tuple[float, float, float]] = []
    for i in range(n):
        t = start + (span - w) * (i / (n - 1) if n > 1 else 0.5)
        seg = decode.window(other, t, w, FINE_RATE)
        if seg.size < FINE_RATE // 4 or not np.any(seg):
            continue
        ref_start = t + coarse - margin
        refw = decode.window(ref, ref_start, w + 2 * margin, FINE_RATE)
        pos, quality = gcc_phat(refw, seg, FINE_RATE)
        points.append((t, ref_start + pos - t, quality))
    result.windows = [{"at": round(t, 3), "offset": round(o, 6), "quality": round(q, 1)} for t, o, q in points]
    # The fine windows must agree on one line (offset + drift): random peaks between unrelated sounds do not.
    need = max(2, -(-3 * len(points) // 5)) if len(points) > 1 else 1
    good = [p for p in points if p[2] >= 5.0]
    ts = np.array([p[0] for p in good])
    offs = np.array([p[1] for p in good])
    slope, icpt = 0.0, float(np.median(offs)) if len(offs) else 0.0
    while len(ts) >= need:
        if len(ts) >= 3 and ts.max() - ts.min() > 5.0:
            slope, icpt = (float(v) for v in np.polyfit(ts, offs, 1))
        else:
            slope, icpt = 0.0, float(np.median(offs))
        resid = np.abs(offs - (slope * ts + icpt))
        if resid.max() <= AGREE_S:
            break
        keep = resid < resid.max()
        ts, offs = ts[keep], offs[keep]
    if len(ts) < need or not len(ts):
        result.reason = (f"no consistent offset: {len(ts)} of {len(points)} fine windows agree (need {need}); "
                         f"different events, or too little shared sound")
        return result
    offset = icpt
    # this file's time t is reference time t + offset(t). A clock running fast by d packs 1 + d seconds of file
    # time into each real second, so offset(t) falls by d per second: drift = -slope.
    result.drift_ppm = round(-slope * 1e6, 2) if len(ts) >= 3 and ts.max() - ts.min() > 5.0 else None
    result.status = "synced"
    result.offset_seconds = round(offset, 6)
    result.offset_samples = round(offset * (oinfo.sample_rate or FINE_RATE))
    result.offset_frames = _frames(offset, oinfo.video_fps or ref_info.video_fps)
    return result


def sync_files(paths: list[str], reference: str | None = None) -> list[SyncResult]:
    """Every file's offset against the reference (default: the longest recording)."""
    if len(paths) < 2:
        raise decode.SyncInputError("give at least two files to sync")
    infos = {p: decode.info(p) for p in paths}
    ref = reference or max(paths, key=lambda p: infos[p].duration)
    env_ref = decode.envelope(ref)
    out = [SyncResult(path=ref, reference=ref, status="reference", offset_seconds=0.0, offset_samples=0,
                      offset_frames=0.0 if infos[ref].video_fps else None, confidence=None)]
    for p in paths:
        if os.path.abspath(p) == os.path.abspath(ref):
            continue
        out.append(sync_pair(ref, p, env_ref=env_ref, ref_info=infos[ref], other_info=infos[p]))
    return out
