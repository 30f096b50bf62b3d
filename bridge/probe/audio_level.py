"""Is the audio track silent? Decode a few short windows spread over the file and measure them.

Phones and cameras often record an audio track of digital zeros (mic off, muted, permission denied);
such clips should not be offered as sync sources or sound. A bounded amount of audio is decoded
(about a second, in windows spread over the file) so that a two-hour file costs what a clip costs.
"""

from __future__ import annotations

import math
from typing import Any

import av
import numpy as np

WINDOW_S = 0.25  # length of each analysed window
WINDOWS = 4  # windows spread over a long file
WHOLE_S = 1.5  # files up to this long are decoded from the start in one piece
SILENT_DBFS = -80.0  # peak below this is silence (16-bit dither is about -90 dBFS); real rooms are far louder

_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def _dbfs(v: float) -> float | None:
    return round(20 * math.log10(v), 2) if v > 0 else None


def measure(container: Any, stream: Any, duration: float | None) -> dict[str, Any]:
    """Peak and RMS (dBFS) over sampled windows of ``stream``; None levels mean digital zeros."""
    rate = stream.codec_context.sample_rate or 0
    if not rate:
        return {"stream": stream.index, "error": "no sample rate"}
    acc = _Acc()
    # Other streams are discarded while the windows are read: demuxers (MP4/MOV) then skip their samples
    # instead of reading them, so a window costs its audio, not the video interleaved with it (a remote
    # clip is read by ranged requests: this is most of what a probe would fetch).
    others = [(s, s.discard) for s in container.streams if s.index != stream.index]
    for s, _ in others:
        s.discard = av.stream.Discard.all
    try:
        if duration is None or duration <= WHOLE_S + 0.01:
            _decode(container, stream, 0.0, WHOLE_S, acc)
            windows = 1
        else:
            span = max(duration - WINDOW_S, 0.0)
            starts = [span * (i + 0.5) / WINDOWS for i in range(WINDOWS)]
            windows = 0
            for t in starts:
                if not _decode(container, stream, t, WINDOW_S, acc):
                    break
                windows += 1
    finally:
        for s, was in others:
            s.discard = was
    seconds = acc.count / max(acc.channels, 1) / rate
    out: dict[str, Any] = {"stream": stream.index, "analysed_seconds": round(seconds, 3), "windows": windows}
    if acc.count == 0:
        out["error"] = acc.error or "no audio could be decoded"
        return out
    rms = math.sqrt(acc.sumsq / acc.count)
    out["peak_dbfs"] = _dbfs(acc.peak)
    out["rms_dbfs"] = _dbfs(rms)
    out["silent"] = acc.peak == 0 or 20 * math.log10(acc.peak) < SILENT_DBFS
    if acc.error:
        out["error"] = acc.error
    return out


_DTYPES = {"u8": np.uint8, "s16": np.int16, "s32": np.int32, "s64": np.int64, "flt": np.float32,
           "dbl": np.float64}


class _Acc:
    """Running peak and sum of squares; frames are pooled per window so numpy runs once per window."""

    __slots__ = ("channels", "count", "error", "peak", "pool", "pool_fmt", "sumsq")

    def __init__(self) -> None:
        self.peak = 0.0
        self.sumsq = 0.0
        self.count = 0
        self.channels = 0
        self.error: str | None = None
        self.pool: list[bytes] = []
        self.pool_fmt = ""

    def add(self, frame: Any) -> None:
        fmt = frame.format
        name = fmt.name.rstrip("p")
        if name not in _DTYPES:
            return
        if self.pool and name != self.pool_fmt:
            self.flush()
        self.pool_fmt = name
        channels = frame.layout.nb_channels or 1
        self.channels = channels
        nbytes = frame.samples * fmt.bytes * (1 if fmt.is_planar else channels)
        for plane in frame.planes:
            self.pool.append(bytes(memoryview(plane)[:nbytes]))

    def flush(self) -> None:
        if not self.pool:
            return
        x = np.frombuffer(b"".join(self.pool), dtype=_DTYPES[self.pool_fmt]).astype(np.float64)
        self.pool.clear()
        if self.pool_fmt in _SCALE:
            if self.pool_fmt == "u8":
                x -= 128.0
            x /= _SCALE[self.pool_fmt]
        if x.size:
            self.peak = max(self.peak, float(np.max(np.abs(x))))
            self.sumsq += float(np.dot(x, x))
            self.count += x.size


def _decode(container: Any, stream: Any, start: float | None, seconds: float, acc: _Acc) -> bool:
    """Decode ``seconds`` of audio from ``start`` (None: from where the demuxer is). False on failure."""
    tb = stream.time_base
    offset = stream.start_time or 0
    if start is not None and tb:
        try:
            container.seek(int(start / tb) + offset, stream=stream, backward=True)
            stream.codec_context.flush_buffers()
        except (av.error.FFmpegError, OverflowError, ValueError) as exc:
            acc.error = f"seek failed: {exc}"
            return False
    tb_f = float(tb) if tb else 0.0
    need = seconds
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                rate = frame.sample_rate or 1
                if (start is not None and frame.pts is not None and tb_f
                        and (frame.pts - offset) * tb_f + frame.samples / rate < start):
                    continue  # pre-roll from the keyframe before the window
                acc.add(frame)
                need -= frame.samples / rate
                if need <= 0:
                    return True
    except (av.error.FFmpegError, ValueError) as exc:
        acc.error = f"decode failed: {exc}"
        return bool(acc.pool) or acc.count > 0
    finally:
        acc.flush()
    return True
