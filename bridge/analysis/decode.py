"""Reduced-size decoding with PyAV: the one place analysis reads pixels from a video.

Shot detection needs only a small picture per frame, so the decoder runs frame-threaded and (in the fast
mode used for shots alone) skips the deblocking filter, which is invisible at 160 px and costs a quarter of
an H.264/HEVC decode. The planes are read straight from the decoder's buffers and shrunk with a stride
plus an area filter: a full-size colour conversion per frame would cost more than decoding it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import av
import cv2
import numpy as np

from ..errors import MediaIdxError

SMALL_WIDTH = 160            # shot detection works on pictures this wide
PLANAR_8BIT = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p"}

Source = str | bytes | os.PathLike[str] | BinaryIO
"""A path, or a seekable binary file object (a remote file: ``Storage.open``), which PyAV reads through
``av.open(fileobj)``. A file object is named in messages by its ``name`` (see ``NamedFile``) and is rewound
before each of the analysis' passes over it (it is not closed)."""


class AnalysisError(MediaIdxError):
    """A file cannot be analysed (empty, not a video, audio only, undecodable); the message says why."""


@dataclass(slots=True)
class VideoInfo:
    """What the analysis needs to know about the primary video stream."""

    path: str
    width: int
    height: int
    fps: float
    duration: float | None
    codec: str
    rotation: float = 0.0
    frames: int | None = None      # known once the whole stream was read


    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "width": self.width, "height": self.height, "fps": round(self.fps, 6),
                "duration": self.duration, "codec": self.codec, "rotation": self.rotation, "frames": self.frames}


@dataclass(slots=True)
class DecodeControl:
    """Lets the consumer of ``small_frames`` switch non-reference frames off and on as it goes."""

    skip_nonref: bool = False


@dataclass(slots=True)
class SmallFrame:
    """One decoded frame at analysis size: luma and the two chroma planes (8 bit), plus the PyAV frame
    while it is still valid (for callers that want a bigger picture of this very frame)."""

    index: int
    time: float
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    frame: Any = None


class NamedFile:
    """A file object shown in messages under ``name`` (a remote asset's URL) instead of its own name.
    Reads, seeks and the rest go to the file itself; closing this does not close it."""

    def __init__(self, fh: BinaryIO, name: str) -> None:
        self._fh = fh
        self.name = name
        self.read = fh.read
        self.seek = fh.seek
        self.tell = fh.tell

    def seekable(self) -> bool:
        return getattr(self._fh, "seekable", lambda: True)()

    def close(self) -> None:
        pass

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._fh, attr)


def is_path(source: Source) -> bool:
    return isinstance(source, str | bytes | os.PathLike)


def _path(source: Source) -> str:
    """The name messages use: the path, or a file object's ``name``."""
    if isinstance(source, bytes):
        return os.fsdecode(source)
    if isinstance(source, str | os.PathLike):
        return os.fsdecode(os.fspath(source))
    name = getattr(source, "name", None)
    return os.fsdecode(name) if isinstance(name, str | bytes) and name else "<stream>"


def _size(source: Source) -> int:
    """Bytes in the file: stat for a path (FileNotFoundError as is), else the file object's ``size`` (a
    RemoteFile knows it from the listing) or its end; the file object is left rewound."""
    if is_path(source):
        return os.path.getsize(_path(source))
    fh: Any = source
    size = getattr(fh, "size", None)
    if not isinstance(size, int):
        end = fh.seek(0, os.SEEK_END)
        size = fh.tell() if end is None else end
    fh.seek(0)
    return int(size)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:200]


def open_video(source: Source) -> tuple[Any, Any, VideoInfo]:
    """(container, video stream, info), or an AnalysisError that says in one line why not."""
    path = _path(source)
    if _size(source) == 0:  # FileNotFoundError goes to the caller as is
        raise AnalysisError(f"{path}: empty file (0 bytes)")
    try:
        # A file object starts where it stands (rewound by _size): PyAV reads it as a fresh open would.
        container = av.open(path if is_path(source) else source, "r", metadata_errors="ignore")
    except FileNotFoundError:
        raise
    except (av.FFmpegError, ValueError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"{path}: not a readable video ({_reason(exc)})") from None
    stream = next((s for s in container.streams if s.type == "video"
                   and not (s.disposition & av.stream.Disposition.attached_pic)), None)
    if stream is None:
        container.close()
        raise AnalysisError(f"{path}: no video stream (audio only, or not a video)")
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 25.0
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 25.0
    duration = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    cc = stream.codec_context
    info = VideoInfo(path, cc.width or 0, cc.height or 0, fps, duration, cc.name or "?")
    return container, stream, info


def video_rotation(source: Source) -> float:
    """Display rotation from our probe (PyAV does not expose the display matrix)."""
    from ..thumbs.poster import probed_rotation

    return probed_rotation(_path(source) if is_path(source) else source)


def _planes(frame: Any, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V at analysis size: Y ``width`` wide, chroma half that, read from the decoder's planes."""
    w, h = frame.width, frame.height
    height = max(2, round(h * width / w / 2) * 2)
    if frame.format.name not in PLANAR_8BIT:
        frame = frame.reformat(width=width, height=height, format="yuv444p")
    out = []
    for i, (tw, th) in enumerate(((width, height), (width // 2, height // 2), (width // 2, height // 2))):
        plane = frame.planes[i]
        arr = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:plane.height, :plane.width]
        # Bilinear straight from the full plane reads 2x2 source pixels per output pixel: a little
        # averaging against grain, at a hundredth of the cost of an area filter at HD sizes.
        out.append(cv2.resize(arr, (tw, th), interpolation=cv2.INTER_LINEAR))
    return out[0], out[1], out[2]


def small_frames(source: Source, *, width: int = SMALL_WIDTH, fast: bool = True, skip_nonref: bool = False,
                 control: DecodeControl | None = None, keep_frame: bool = False, threads: int = 0,
                 info_out: list[VideoInfo] | None = None) -> Iterator[SmallFrame]:
    """The frames of the primary video stream at analysis size, in presentation order.

    ``fast`` skips the loop filter (shot detection only: the pictures are not shown to anyone).
    ``skip_nonref`` does not decode frames no other frame refers to (the B-frames between reference frames,
    about half of a B-pyramid stream): ``index`` then counts frames by timestamp and has gaps. ``control``
    does the same, switched by the caller between packets (FFmpeg reads the setting per frame).
    Packets that fail to decode are skipped; a stream with no decodable frame is an AnalysisError.
    ``info.frames`` is set from the packets' timestamps once the stream is exhausted. ``threads`` 0 lets
    FFmpeg choose (one per CPU); scan workers pass 1, as the pool already keeps every CPU busy.
    """
    container, stream, info = open_video(source)
    if info_out is not None:
        info_out.append(info)
    cc = stream.codec_context
    cc.thread_type = "AUTO" if threads != 1 else "NONE"
    cc.thread_count = threads
    if fast:
        cc.options = {"skip_loop_filter": "all"}
    skipping = skip_nonref
    if skipping:
        cc.skip_frame = "NONREF"
    by_time = skip_nonref or control is not None
    # Frames lost to damage (a demuxer resyncing past bad bytes drops them silently) must not shift the numbers
    # of every frame after them: in a constant-rate stream a gap of 1.5 frame durations or more between two
    # decoded frames counts the missing ones. A variable-rate stream is counted as decoded (its gaps are holds).
    cfr = bool(stream.average_rate and stream.base_rate and stream.average_rate == stream.base_rate)
    hole = 1.5 if cfr else math.inf
    prev_t: float | None = None
    tb = stream.time_base
    end_pts: int | None = None
    last_index = -1
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # tiny pictures: OpenCV's thread pool only competes with the decoder's threads
    index = 0
    errors = 0
    origin: float | None = None    # the first decoded frame's time: times count from it, as in grab_frames
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                end = packet.pts + (packet.duration or 0)
                end_pts = end if end_pts is None else max(end_pts, end)
            if control is not None and control.skip_nonref != skipping:
                skipping = control.skip_nonref
                cc.skip_frame = "NONREF" if skipping else "DEFAULT"
            try:
                frames = packet.decode()
            except av.FFmpegError:
                errors += 1
                if errors > 50 and index == 0:
                    break
                continue
            for frame in frames:
                t = frame.time
                if origin is None:
                    origin = t or 0.0
                t = index / info.fps if t is None else t - origin
                if by_time:
                    last_index = max(last_index + 1, round(t * info.fps))
                elif prev_t is not None and (t - prev_t) * info.fps >= hole:
                    last_index += round((t - prev_t) * info.fps)
                else:
                    last_index += 1
                prev_t = t
                y, u, v = _planes(frame, width)
                yield SmallFrame(last_index, t, y, u, v, frame if keep_frame else None)
                index += 1
    except av.FFmpegError as exc:
        if index == 0:
            raise AnalysisError(f"{info.path}: no frame could be decoded ({_reason(exc)})") from None
    finally:
        container.close()
        cv2.setNumThreads(threads)
    if index == 0:
        raise AnalysisError(f"{info.path}: no frame could be decoded (corrupt or truncated video)")
    info.frames = last_index + 1
    if by_time and end_pts is not None and tb and origin is not None:
        info.frames = max(info.frames, round((float(end_pts * tb) - origin) * info.fps))


def frame_rgb(frame: Any, max_side: int) -> np.ndarray:
    """An RGB picture of a PyAV frame with its long side at most ``max_side``."""
    w, h = frame.width, frame.height
    scale = min(1.0, max_side / max(w, h))
    tw, th = max(2, round(w * scale)), max(2, round(h * scale))
    return frame.reformat(width=tw, height=th, format="rgb24").to_ndarray()


def grab_frames(source: Source, times: Iterable[float], max_side: int) -> dict[float, np.ndarray]:
    """RGB pictures of the frames at these times (seconds from the first frame), at full quality.

    Targets are visited in order; a target more than two seconds ahead, or behind, is reached by seeking
    to the keyframe before it, so a few pictures from a long clip do not cost a full decode.
    """
    wanted = sorted(set(times))
    out: dict[float, np.ndarray] = {}
    if not wanted:
        return out
    container, stream, info = open_video(source)
    stream.codec_context.thread_type = "AUTO"
    half = 0.5 / info.fps
    try:
        first = next(_decode_iter(container, stream), None)  # times count from the first frame, as above
        start = (first.time or 0.0) if first is not None else 0.0
        it: Iterator[Any] | None = None
        last = -math.inf
        for target in wanted:
            if it is None or target - last > 2.0 or target < last:
                try:
                    container.seek(int((start + max(0.0, target - 1.0)) / stream.time_base), stream=stream,
                                   backward=True)
                except av.FFmpegError:  # not seekable: read again from the start
                    container.close()
                    container, stream, info = open_video(source)
                it = _decode_iter(container, stream)
            best = None
            for frame in it:
                t = (frame.time if frame.time is not None else 0.0) - start
                last = t
                if t >= target - half:
                    best = frame
                    break
            if best is None:
                it = None
                continue
            out[target] = frame_rgb(best, max_side)
    finally:
        container.close()
    return out


def _decode_iter(container: Any, stream: Any) -> Iterator[Any]:
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.FFmpegError:
            continue


def rotate(rgb: np.ndarray, rotation: float) -> np.ndarray:
    """Apply a display rotation (ffprobe's sign, as bridge.thumbs uses it) in multiples of 90 degrees."""
    k = (round(rotation / 90) % 4) if rotation else 0
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb
