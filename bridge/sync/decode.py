"""Audio decoding for sync, in-process with PyAV: whole files as a low-rate energy envelope in a few bands
(streamed, so a 2-hour file costs about 35 MB), and short windows at a higher rate by seeking."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np
import scipy.fft

from ..errors import MediaIdxError

SEEK_AFTER_S = 120.0


class SyncInputError(MediaIdxError):
    """A file sync cannot use: unreadable, no audio stream."""


@dataclass
class AudioInfo:
    path: str
    duration: float          # seconds of audio
    sample_rate: int
    channels: int
    video_fps: str | None    # "24000/1001" when the file also has video
    lead: float = 0.0        # seconds from the video's start to the audio's (cameras: -0.08 to +0.2 s seen);
                             # 0 without video. Sync measures the audio; an editor places the clip by its video


def _open(path: str) -> av.container.InputContainer:
    if not os.path.exists(path):
        raise SyncInputError(f"{path}: no such file")
    try:
        container = av.open(path, "r", metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError) as exc:
        raise SyncInputError(f"{os.path.basename(path)}: not readable media ({exc})") from None
    if not container.streams.audio:
        container.close()
        raise SyncInputError(f"{os.path.basename(path)}: no audio stream")
    return container


def info(path: str) -> AudioInfo:
    with _open(path) as c:
        a = c.streams.audio[0]
        dur = None
        if a.duration is not None and a.time_base:
            dur = float(a.duration * a.time_base)
        elif c.duration:
            dur = c.duration / av.time_base
        fps = None
        lead = 0.0
        if c.streams.video:
            v = c.streams.video[0]
            rate = v.average_rate or v.guessed_rate
            fps = f"{rate.numerator}/{rate.denominator}" if rate else None
            if a.start_time is not None and v.start_time is not None and a.time_base and v.time_base:
                lead = float(a.start_time * a.time_base - v.start_time * v.time_base)
        return AudioInfo(path, float(dur or 0.0), a.codec_context.sample_rate or 0, a.codec_context.channels or 0, fps,
                         lead)


def _mono(container: av.container.InputContainer, rate: int, start: float | None = None):
    """Yield mono float32 blocks at `rate` from `start` (seconds; None = the beginning), each with the time of
    its first sample for the first block, None after."""
    stream = container.streams.audio[0]
    stream.thread_type = "AUTO"
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    if start and start > SEEK_AFTER_S:  # short offsets: decode from 0 (exact), long ones: seek
        container.seek(int(max(0.0, start) / stream.time_base), stream=stream, backward=True, any_frame=False)
    first = True
    last = np.zeros(0, dtype=np.float32)
    for frame in _frames(container, stream, rate):
        if isinstance(frame, tuple):
            # a packet that would not decode: its length filled (keeps the timing of what follows) with the last
            # sound repeated, not silence: digital silence would make its edges the loudest onsets of the file
            n, at = frame
            t0, first = (at if first else None), False
            yield t0, np.resize(last, n) if len(last) else np.zeros(n, dtype=np.float32)
            continue
        t0 = None
        if first:   # only the first block's time is used (by window()); Fraction arithmetic per frame is slow
            t0 = float(frame.pts * stream.time_base) if frame.pts is not None else None
            first = False
        for out in resampler.resample(frame):
            last = out.to_ndarray().reshape(-1)
            yield t0, last
            t0 = None
    for out in resampler.resample(None):
        yield None, out.to_ndarray().reshape(-1)


def _frames(container: av.container.InputContainer, stream: av.AudioStream,
            rate: int) -> Iterator[av.AudioFrame | tuple[int, float | None]]:
    """The stream's decoded frames; for a packet that fails to decode (a corrupt stretch), (its duration in
    samples at `rate`, its time) instead, as ffmpeg itself carries on past one: a recording with a damaged
    second still syncs by the rest, and what follows keeps its place. Reading stops at a damaged or truncated
    container; nothing read at all is an error."""
    got = False
    failed = 0
    error: av.error.FFmpegError | None = None
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            if not got and error is not None:   # a short stream none of whose packets decode: an error too
                raise error from None
            return
        except av.error.FFmpegError:
            if not got:
                raise
            return
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:   # mostly InvalidDataError; AAC garbage can even give EPERM
            failed += 1
            error = exc
            if not got and failed >= 50:   # nothing decodes (a codec FFmpeg lacks, all garbage): an error
                raise
            if packet.duration and packet.time_base:
                at = float(packet.pts * packet.time_base) if packet.pts is not None else None
                yield round(float(packet.duration * packet.time_base) * rate), at
            continue
        for frame in frames:
            got = True
            yield frame


BANDS_HZ = (100, 300, 600, 1000, 1700, 2700, 4000)   # band edges of the envelope (at 8 kHz)
FRAME = 160                                          # 20 ms at 8 kHz: 50 Hz bins, enough for these bands
BATCH = 1 << 16                                      # samples gathered before a vectorised pass


def _band_matrix(rate: int, frame: int) -> np.ndarray:
    f = np.fft.rfftfreq(frame, 1 / rate)
    return np.stack([(f >= lo) & (f < hi) for lo, hi in itertools.pairwise(BANDS_HZ)],
                    axis=1).astype(np.float32)


def envelope(path: str, rate: int = 8000, hop: int = 40) -> np.ndarray:
    """Log-energy per hop in a few frequency bands: shape (rate/hop per second, bands), 200 x 6 by default,
    streamed (a 2-hour file costs about 35 MB). Bands, not one broadband level, because a steady beat makes the
    broadband onsets of music repeat every bar; which notes start where differs from bar to bar."""
    bands = _band_matrix(rate, FRAME)
    win = np.hanning(FRAME).astype(np.float32)
    out: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    have = 0
    carry = np.zeros(0, dtype=np.float32)

    def flush(final: bool) -> None:
        nonlocal carry, pending, have
        buf = np.concatenate([carry, *pending]) if pending else carry
        pending, have = [], 0
        if final and len(buf) and (len(buf) - FRAME) % hop:   # the tail: pad to whole hops
            buf = np.concatenate([buf, np.zeros(hop - (max(0, len(buf) - FRAME) % hop), dtype=np.float32)])
        if len(buf) < FRAME:
            carry = buf
            return
        n = (len(buf) - FRAME) // hop + 1
        frames = np.lib.stride_tricks.sliding_window_view(buf, FRAME)[: n * hop: hop] * win
        spec = scipy.fft.rfft(frames, axis=1)   # float32 in, complex64 out: several times numpy's speed here
        power = spec.real ** 2 + spec.imag ** 2
        out.append(np.log10(power @ bands / FRAME + 1e-10).astype(np.float32))
        carry = buf[n * hop:]

    with _open(path) as c:
        try:
            for _t, block in _mono(c, rate):
                pending.append(block)
                have += len(block)
                if have >= BATCH:
                    flush(False)
            flush(True)
        except av.error.FFmpegError as exc:
            if not out:
                raise SyncInputError(f"{os.path.basename(path)}: cannot decode its audio ({exc})") from None
    return np.concatenate(out) if out else np.zeros((0, len(BANDS_HZ) - 1), dtype=np.float32)


def window(path: str, start: float, duration: float, rate: int) -> np.ndarray:
    """`duration` seconds of mono audio at `rate` from `start` (clipped to the file); zero-padded before 0."""
    pad = 0
    if start < 0:
        pad = round(-start * rate)
        duration += start
        start = 0.0
    want = max(0, round(duration * rate))
    got: list[np.ndarray] = []
    have = 0
    skip: int | None = None
    with _open(path) as c:
        for t0, block in _mono(c, rate, start):
            if skip is None:
                pos = t0 if (t0 is not None and start > SEEK_AFTER_S) else 0.0
                skip = round((start - pos) * rate)
                if skip < 0:  # the seek landed after the start: pad
                    got.append(np.zeros(-skip, dtype=np.float32))
                    have, skip = -skip, 0
            got.append(block)
            have += len(block)
            if have >= skip + want:
                break
    data = np.concatenate(got)[skip or 0:(skip or 0) + want] if got else np.zeros(0, dtype=np.float32)
    return np.concatenate([np.zeros(pad, dtype=np.float32), data]) if pad else data


def windows(path: str, spans: list[tuple[float, float]], rate: int) -> list[np.ndarray]:
    """Several (start, duration) windows of one file. When they all end within SEEK_AFTER_S, one decode from
    the start serves them all (exact positions, and one pass instead of one per window); else one seek each."""
    if not spans:
        return []
    end = max(s + d for s, d in spans)
    if end > SEEK_AFTER_S:
        return [window(path, s, d, rate) for s, d in spans]
    data = window(path, 0.0, end, rate)   # at most SEEK_AFTER_S seconds: 7.7 MB at 16 kHz
    out = []
    for s, d in spans:
        pad = 0
        if s < 0:
            pad, d, s = round(-s * rate), d + s, 0.0
        i, n = round(s * rate), max(0, round(d * rate))
        seg = data[i:i + n]
        out.append(np.concatenate([np.zeros(pad, dtype=np.float32), seg]) if pad else seg.copy())
    return out
