"""Offsets between recordings, coarse to fine.

1. Coarse: onset envelopes (rise of log energy in 6 bands, 200 per second) of whole files, FFT cross-correlated
   over every lag (summed over bands); a peak's prominence over the rest of the correlation (a robust z-score)
   is its confidence, and the strongest few distinct peaks are candidates, verified in turn by step 2.
2. Fine: GCC-PHAT (whitened cross-spectrum: robust to different microphones, EQ and reverb) on short windows
   at 16 kHz around the coarse answer, the peak located on an 8x finer grid; each window's offset belongs to
   its energy centroid (with drift the offset changes along a window).
3. Drift: the fine offset at several points along the overlap, fitted with a line: its slope is the clock
   drift (ppm), its value at the clip's start the offset. Most windows must agree with that line within 3 ms;
   if they do not (or the coarse peak is weak) the file is "unsynced", never given a guessed offset.
4. Refine: drift stretches each window against the reference (100 ppm over 6 s: 0.6 ms, more than a period at
   2 kHz), which smears its GCC-PHAT peak and made the slope read about 8 % low. So the windows are time-warped
   by the first slope (windowed-sinc resampling about their middle) and measured again: each then gives the
   offset at its middle exactly, and the line is fitted again (twice at most).

Why our own numpy code: audio-offset-finder loops over lags in Python at 16 ms resolution, syncstart only
looks at the first seconds; neither fits drift. Memory stays bounded: whole files only as envelopes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from . import decode

ENV_RATE = 200          # envelope values per second
FINE_RATE = 16000       # Hz for the fine pass
MIN_CONFIDENCE = 5.0    # robust z-score of the coarse peak below which a pair is "unsynced" at once
AGREE_S = 0.003         # fine windows must agree on one offset line within this
DRIFT_SPAN_S = 8.0      # drift is fitted only over windows this far apart: each window is good to a few tenths
                        # of a ms, so the slope is good to about 30 ppm over 8 s and 10 ppm over 30 s; closer
                        # windows give none (assumed 0), which beats a slope off by 100 ppm


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
    via: str | None = None                   # the clip it was placed through when it shares no (or less) sound
                                             # with the reference; None: placed against the reference directly

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def onset_envelope(log_energy: np.ndarray) -> np.ndarray:
    """Half-wave rectified rise of log energy, z-scored per band: level- and EQ-independent, sharp at onsets.
    (frames,) or (frames, bands) in, the same shape out (float32)."""
    if log_energy.shape[0] < 3:
        return np.zeros((0, *log_energy.shape[1:]), dtype=np.float32)
    rise = np.maximum(np.diff(log_energy.astype(np.float32), axis=0), 0.0)
    rise -= rise.mean(axis=0)
    sd = rise.std(axis=0)
    return rise / np.where(sd > 0, sd, 1.0)


def xcorr(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-correlation c[k] = sum a[n + k] b[n] (summed over bands when 2-D) for every lag k in
    -(len(b)-1) .. len(a)-1, by FFT, one band at a time so memory stays a few arrays of the padded length."""
    n = len(a) + len(b) - 1
    size = 1 << (n - 1).bit_length()
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    spec = np.zeros(size // 2 + 1, dtype=np.complex128)
    for k in range(a.shape[1]):
        spec += np.fft.rfft(a[:, k], size) * np.conj(np.fft.rfft(b[:, k], size))
    c = np.fft.irfft(spec, size)
    del spec
    lags = np.concatenate([np.arange(-(len(b) - 1), 0), np.arange(0, len(a))])
    vals = np.concatenate([c[size - (len(b) - 1):], c[: len(a)]])
    return lags, vals


def coarse_offset(env_ref: np.ndarray, env_other: np.ndarray, min_overlap_s: float = 3.0) -> tuple[float, float]:
    """(offset in seconds of `other` on the reference's timeline, confidence)."""
    return coarse_onsets(onset_envelope(env_ref), onset_envelope(env_other), min_overlap_s)


def coarse_onsets(a: np.ndarray, b: np.ndarray, min_overlap_s: float = 3.0) -> tuple[float, float]:
    """`coarse_offset` on onset envelopes already computed (a group computes each file's once)."""
    return coarse_candidates(a, b, min_overlap_s, count=1)[0]


def coarse_candidates(a: np.ndarray, b: np.ndarray, min_overlap_s: float = 3.0, count: int = 4,
                      within: float = 0.7) -> list[tuple[float, float]]:
    """The strongest distinct correlation peaks as (offset, confidence), best first: up to `count`, those with at
    least `within` of the best's confidence. Why several: music with a steady beat correlates at every bar, and
    the longer overlap of a wrong bar can outscore the true one; the fine windows tell them apart."""
    if a.size < ENV_RATE or b.size < ENV_RATE:
        return [(0.0, 0.0)]
    lags, c = xcorr(a, b)
    # normalise by the overlap so partial overlaps at the ends do not win on length alone
    overlap = np.minimum(len(a), lags + len(b)) - np.maximum(0, lags)
    ok = overlap >= min(min_overlap_s * ENV_RATE, 0.5 * min(len(a), len(b)))
    score = np.where(ok, c / np.sqrt(np.maximum(overlap, 1)), 0.0)
    del c, overlap
    k = int(np.argmax(score))
    valid = score[ok]
    # prominence against the rest, excluding the peak's neighbourhood
    mask = np.abs(lags[ok] - lags[k]) > ENV_RATE // 10
    rest = valid[mask]
    med = float(np.median(rest))
    mad = float(np.median(np.abs(rest - med))) * 1.4826 or 1e-9
    del valid, rest, mask
    out = [(float(lags[k]) / ENV_RATE, (float(score[k]) - med) / mad)]
    score[~ok] = -np.inf
    while len(out) < count:
        score[np.abs(lags - lags[k]) <= ENV_RATE // 10] = -np.inf
        k = int(np.argmax(score))
        conf = (float(score[k]) - med) / mad
        if not np.isfinite(conf) or conf < within * out[0][1] or conf < MIN_CONFIDENCE:
            break
        out.append((float(lags[k]) / ENV_RATE, conf))
    return out


def _tukey(n: int, alpha: float = 0.1) -> np.ndarray:
    w = np.ones(n)
    edge = max(1, int(alpha * n / 2))
    ramp = 0.5 * (1 - np.cos(np.pi * np.arange(edge) / edge))
    w[:edge], w[n - edge:] = ramp, ramp[::-1]
    return w


UPSAMPLE = 8             # the correlation is evaluated on a grid this much finer than the samples near its peak


def gcc_phat(ref: np.ndarray, seg: np.ndarray, rate: int) -> tuple[float, float]:
    """Position (seconds) of `seg` inside `ref` by GCC-PHAT; and the peak's prominence (z-score), a per-window
    quality. The peak is then located on a grid UPSAMPLE times finer (the band-limited correlation evaluated
    there by a short DFT over its spectrum) with parabolic interpolation: a parabola through three samples of a
    sharp peak is biased by up to a tenth of a sample; on the fine grid that bias shrinks with it."""
    n = len(ref) + len(seg)
    size = 1 << (n - 1).bit_length()
    # taper both ends: whitening turns abrupt window edges into false broadband peaks
    ref = ref * _tukey(len(ref))
    seg = seg * _tukey(len(seg))
    spec = np.fft.rfft(ref, size) * np.conj(np.fft.rfft(seg, size))
    spec /= np.maximum(np.abs(spec), 1e-12)
    c = np.fft.irfft(spec, size)[: max(1, len(ref) - len(seg) + 1)]
    k = int(np.argmax(c))
    sd = float(c.std()) or 1e-12
    quality = float((c[k] - c.mean()) / sd)
    # the correlation at lags k - 1 .. k + 1 in steps of 1/UPSAMPLE: sum over bins of spec * e^{2 pi i f lag}
    lags = k + np.arange(-UPSAMPLE, UPSAMPLE + 1) / UPSAMPLE
    bins = np.arange(len(spec))
    w = np.full(len(spec), 2.0)
    w[0] = 1.0
    if size % 2 == 0:
        w[-1] = 1.0
    v = w * spec * np.exp(2j * np.pi * bins * lags[0] / size)
    step = np.exp(2j * np.pi * bins / (size * UPSAMPLE))   # one complex exp per bin, then products
    fine = np.empty(len(lags))
    for i in range(len(lags)):
        fine[i] = v.real.sum()
        v *= step
    j = int(np.argmax(fine))
    frac = 0.0
    if 0 < j < len(fine) - 1:
        y0, y1, y2 = fine[j - 1], fine[j], fine[j + 1]
        den = y0 - 2 * y1 + y2
        frac = 0.5 * (y0 - y2) / den if den != 0 else 0.0
    return (lags[j] + frac / UPSAMPLE) / rate, quality


REFINE_PASSES = 2        # warped passes after the first: the second removes the smear the first's slope error
                         # (a few ppm) leaves, e.g. 100 ppm read as 99.6, then 100.0
REFINE_STOP = 0.5e-6     # no further pass once the slope moves less than this
SINC_HALF = 16           # taps either side of the windowed-sinc interpolator used to warp a window
SINC_STEPS = 4096        # fractional positions tabulated: 1/4096 of a sample is 15 ns at 16 kHz


def _sinc_table() -> np.ndarray:
    """Kaiser-windowed sinc (beta 8) for each fractional position i / SINC_STEPS, taps -SINC_HALF+1..SINC_HALF."""
    frac = np.arange(SINC_STEPS + 1) / SINC_STEPS
    d = frac[:, None] - np.arange(-SINC_HALF + 1, SINC_HALF + 1)[None, :]
    win = np.i0(8.0 * np.sqrt(np.clip(1 - (d / (SINC_HALF + 1)) ** 2, 0, 1))) / np.i0(8.0)
    return np.sinc(d) * win


_SINC: np.ndarray | None = None


def warp(x: np.ndarray, scale: float, centre: int, block: int = 16384) -> tuple[np.ndarray, int]:
    """`x` resampled onto a grid `scale` times denser: y[k] = x at centre + (k - kc) / scale, so y[kc] is
    x[centre] exactly; returns (y, kc). Windowed-sinc interpolation from a table, not resample_poly: a ratio
    within a few ppm of 1 (999_900/1_000_000) would need a polyphase filter of millions of taps. `scale` near 1
    needs no anti-aliasing, and the kernel is symmetric, so it adds no delay. Built in blocks: memory stays
    `block` x 2 SINC_HALF."""
    global _SINC
    if _SINC is None:
        _SINC = _sinc_table()
    n = len(x)
    kc = int(np.floor(centre * scale))
    m = int(np.floor((n - 1 - centre) * scale)) + kc + 1
    xp = np.concatenate([np.zeros(SINC_HALF), x.astype(np.float64), np.zeros(SINC_HALF + 1)])
    taps = np.arange(-SINC_HALF + 1, SINC_HALF + 1) + SINC_HALF
    y = np.empty(m)
    for lo in range(0, m, block):
        pos = centre + (np.arange(lo, min(m, lo + block)) - kc) / scale   # source positions (samples)
        base = np.floor(pos).astype(np.int64)
        q = np.rint((pos - base) * SINC_STEPS).astype(np.int64)
        y[lo:lo + len(pos)] = np.einsum("ij,ij->i", _SINC[q], xp[base[:, None] + taps[None, :]])
    return y, kc


def _frames(seconds: float, fps: str | None) -> float | None:
    if not fps:
        return None
    return float(Fraction(fps) * Fraction(seconds).limit_denominator(10 ** 7))


def sync_pair(ref: str, other: str, *, env_ref: np.ndarray | None = None, env_other: np.ndarray | None = None,
              coarse: tuple[float, float] | None = None, lengths: tuple[float, float] | None = None,
              ref_info: decode.AudioInfo | None = None, other_info: decode.AudioInfo | None = None,
              windows: int = 5, window_s: float = 6.0) -> SyncResult:
    """`other` placed on `ref`'s timeline. A group passes the coarse (offset, confidence) and the envelopes'
    `lengths` (seconds) instead, having computed them once per file and pair."""
    ref_info = ref_info or decode.info(ref)
    oinfo = other_info or decode.info(other)
    if coarse is None or lengths is None:
        env_r = env_ref if env_ref is not None else decode.envelope(ref)
        env_o = env_other if env_other is not None else decode.envelope(other)
        coarse = coarse or coarse_offset(env_r, env_o)
        lengths = (len(env_r) / ENV_RATE, len(env_o) / ENV_RATE)
    result = SyncResult(path=other, reference=ref, status="unsynced")
    coarse, conf = coarse
    result.confidence = round(conf, 2)
    if conf < MIN_CONFIDENCE:
        result.reason = (f"no shared sound found (confidence {conf:.1f} < {MIN_CONFIDENCE:g}): different events, "
                         "silence or too short")
        return result
    # the overlap on the other file's own timeline
    r_len, o_len = lengths
    start = max(0.0, -coarse)
    end = min(o_len, r_len - coarse)
    span = end - start
    if span < 1.0:
        result.reason = "the recordings overlap by less than a second"
        return result
    w = min(window_s, span)
    n = max(1, min(windows, int(span // w)))
    short = n < 3 and span >= 3.0
    if short:
        # a short overlap (cameras overlapping each other briefly): three half-overlapping windows rather than
        # one or two, and all three must agree: the first and last do not overlap, so two independent windows
        # confirm it (two overlapping ones share half their sound, and a chance peak with it)
        w, n = min(w, max(2.0, span / 2)), 3
    margin = 0.25 + 2e-4 * span  # covers the coarse step and up to 200 ppm of drift over the overlap
    points: list[tuple[float, float, float]] = []
    # starts on the sample grid, so the positions below are those of the samples actually compared
    starts = [round((start + (span - w) * (i / (n - 1) if n > 1 else 0.5)) * FINE_RATE) / FINE_RATE
              for i in range(n)]
    ref_starts = [round((t + coarse - margin) * FINE_RATE) / FINE_RATE for t in starts]
    segs = decode.windows(other, [(t, w) for t in starts], FINE_RATE)
    refws = decode.windows(ref, [(r, w + 2 * margin) for r in ref_starts], FINE_RATE)
    # a window cut short by the reference's end is zero-padded to its full length, as one before its start is:
    # else the lags where the clip's window runs past that end (the overlap's end is only known to the coarse
    # step) fall outside the search, and the window next to the end measures a wrong peak
    full = round((w + 2 * margin) * FINE_RATE)
    refws = [np.concatenate([r, np.zeros(full - len(r), dtype=r.dtype)]) if len(r) < full else r for r in refws]

    def measure(slope: float) -> list[tuple[float, float, float]]:
        """(time on this file, offset there, quality) per window. slope 0: the offset at the window's energy
        centroid (where its sound is; with drift the offset changes along a window). Else the window is first
        warped onto the reference's clock by that slope, and the offset is that of its middle sample."""
        out = []
        for t, ref_start, seg, refw in zip(starts, ref_starts, segs, refws, strict=True):
            if seg.size < FINE_RATE // 4 or not np.any(seg):
                continue
            if slope == 0.0:
                pos, quality = gcc_phat(refw, seg, FINE_RATE)
                e = seg.astype(np.float64) ** 2
                mid = t + float(np.dot(np.arange(len(seg)), e) / max(float(e.sum()), 1e-20)) / FINE_RATE
                out.append((mid, ref_start + pos - t, quality))
            else:
                # reference time runs 1 + slope per second of this file's: warp the window onto it
                centre = len(seg) // 2
                warped, kc = warp(seg, 1.0 + slope, centre)
                pos, quality = gcc_phat(refw, warped, FINE_RATE)
                mid = t + centre / FINE_RATE
                out.append((mid, ref_start + pos + kc / FINE_RATE - mid, quality))
        return out

    def fit(points: list[tuple[float, float, float]], need: int) -> tuple[np.ndarray, float, float, bool]:
        """The fine windows must agree on one line (offset + drift): random peaks between unrelated sounds do
        not. The worst window is dropped until the rest agree within AGREE_S; returns (times kept, slope,
        intercept, whether the slope was fitted)."""
        good = [p for p in points if p[2] >= 5.0]
        ts = np.array([p[0] for p in good])
        offs = np.array([p[1] for p in good])
        slope, icpt = 0.0, float(np.median(offs)) if len(offs) else 0.0
        while len(ts) >= need:
            if len(ts) >= 3 and ts.max() - ts.min() > DRIFT_SPAN_S:
                slope, icpt = (float(v) for v in np.polyfit(ts, offs, 1))
            else:
                slope, icpt = 0.0, float(np.median(offs))
            resid = np.abs(offs - (slope * ts + icpt))
            if resid.max() <= AGREE_S:
                break
            keep = resid < resid.max()
            ts, offs = ts[keep], offs[keep]
        return ts, slope, icpt, bool(len(ts) >= 3 and ts.max() - ts.min() > DRIFT_SPAN_S)

    points = measure(0.0)
    need = max(2, -(-3 * len(points) // 5)) if len(points) > 1 else 1
    if short:
        need = 3
    ts, slope, icpt, fitted = fit(points, need)
    for _ in range(REFINE_PASSES):
        # module docstring, 4.: a pass is kept only when as many of its windows agree as before
        if not (fitted and len(ts) >= need and slope != 0.0):
            break
        points2 = measure(slope)
        ts2, slope2, icpt2, fitted2 = fit(points2, need)
        if not (fitted2 and len(ts2) >= len(ts)):
            break
        done = abs(slope2 - slope) < REFINE_STOP
        points, ts, slope, icpt, fitted = points2, ts2, slope2, icpt2, fitted2
        if done:
            break
    result.windows = [{"at": round(t, 3), "offset": round(o, 6), "quality": round(q, 1)} for t, o, q in points]
    if len(ts) < need or not len(ts):
        result.reason = (f"no consistent offset: {len(ts)} of {len(points)} fine windows agree (need {need}); "
                         f"different events, or too little shared sound")
        return result
    offset = icpt
    # this file's time t is reference time t + offset(t). A clock running fast by d packs 1 + d seconds of file
    # time into each real second, so offset(t) falls by d per second: drift = -slope.
    result.drift_ppm = round(-slope * 1e6, 2) if fitted else None
    result.status = "synced"
    result.offset_seconds = round(offset, 6)
    result.offset_samples = round(offset * (oinfo.sample_rate or FINE_RATE))
    result.offset_frames = _frames(offset, oinfo.video_fps or ref_info.video_fps)
    return result
