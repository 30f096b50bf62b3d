"""Audio decoding for sync, in-process with PyAV: whole files as a low-rate energy envelope (streamed, so a
2-hour file costs a few MB), and short windows at a higher rate by seeking."""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

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
        if c.streams.video:
            rate = c.streams.video[0].average_rate or c.streams.video[0].guessed_rate
            fps = f"{rate.numerator}/{rate.denominator}" if rate else None
        return AudioInfo(path, float(dur or 0.0), a.codec_context.sample_rate or 0, a.codec_context.channels or 0, fps)


def _mono(container: av.container.InputContainer, rate: int, start: float | None = None):
    """Yield mono float32 blocks at `rate` from `start` (seconds; None = the beginning)."""
    stream = container.streams.audio[0]
    stream.thread_type = "AUTO"
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    if start and start > SEEK_AFTER_S:  # short offsets: decode from 0 (exact), long ones: seek
        container.seek(int(max(0.0, start) / stream.time_base), stream=stream, backward=True, any_frame=False)
    for frame in container.decode(stream):
        t0 = float(frame.pts * stream.time_base) if frame.pts is not None else None
        for out in resampler.resample(frame):
            yield t0, out.to_ndarray().reshape(-1)
            t0 = None
    for out in resampler.resample(None):
        yield None, out.to_ndarray().reshape(-1)


def envelope(path: str, rate: int = 8000, hop: int = 40) -> np.ndarray:
    """Log-energy per hop (rate/hop values per second: 200 by default), streamed."""
    out: list[np.ndarray] = []
    carry = np.zeros(0, dtype=np.float32)
    with _open(path) as c:
        try:
            for _t, block in _mono(c, rate):
                buf = np.concatenate([carry, block]) if carry.size else block
                n = len(buf) // hop
                if n:
                    frames = buf[: n * hop].reshape(n, hop)
                    out.append(np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10).astype(np.float32))
                carry = buf[n * hop:]
        except av.error.FFmpegError as exc:
            if not out:
                raise SyncInputError(f"{os.path.basename(path)}: cannot decode its audio ({exc})") from None
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


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
