"""Synthetic media with known truth, for tests, the demo library and benchmarks.

Everything is encoded in-process with PyAV (no ffmpeg subprocess), so a fixture knows exactly the
frame rate, frame count, resolution, audio and metadata it wrote.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

FrameFn = Callable[[int, int, int], np.ndarray]  # (index, width, height) -> HxWx3 uint8 RGB


def bars(index: int, width: int, height: int) -> np.ndarray:
    """Colour bars that drift one pixel per frame: every frame differs, none is black."""
    colours = np.array(
        [[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
         [235, 16, 235], [235, 16, 16], [16, 16, 235], [60, 60, 60]], dtype=np.uint8)
    xs = (np.arange(width) + index) * len(colours) // max(width, 1) % len(colours)
    row = colours[xs]
    img = np.repeat(row[None, :, :], height, axis=0)
    # a moving square so motion is visible
    s = max(4, height // 6)
    x0 = (index * 3) % max(1, width - s)
    img[height // 3: height // 3 + s, x0: x0 + s] = (255, 128, 0)
    return img


def solid(value: int | tuple[int, int, int]) -> FrameFn:
    def fn(index: int, width: int, height: int) -> np.ndarray:
        return np.full((height, width, 3), value, dtype=np.uint8)
    return fn


def noise(seed: int = 0) -> FrameFn:
    def fn(index: int, width: int, height: int) -> np.ndarray:
        rng = np.random.default_rng(seed + index)
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return fn


def sequence(*parts: tuple[int, FrameFn]) -> FrameFn:
    """Frames from several generators in turn: ((count, fn), ...)."""
    def fn(index: int, width: int, height: int) -> np.ndarray:
        start = 0
        for count, part in parts:
            if index < start + count:
                return part(index - start, width, height)
            start += count
        return parts[-1][1](index - start, width, height)
    return fn


def tone(freq: float = 440.0, amplitude: float = 0.3) -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: amplitude * np.sin(2 * np.pi * freq * t)


def silence() -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: np.zeros_like(t)


def make_video(
    path: str | os.PathLike[str],
    *,
    width: int = 320,
    height: int = 240,
    fps: Fraction | int | str = 25,
    frames: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    frame_fn: FrameFn = bars,
    audio: Callable[[np.ndarray], np.ndarray] | None = None,
    sample_rate: int = 48000,
    channels: int = 2,
    audio_codec: str | None = None,
    metadata: Mapping[str, str] | None = None,
    stream_metadata: Mapping[str, str] | None = None,
    timecode: str | None = None,
    gop: int | None = None,
) -> Path:
    """Encode a clip whose every property is known. ``audio`` maps sample times (s) to samples."""
    path = Path(path)
    rate = Fraction(fps)
    options = {"g": str(gop)} if gop else {}
    with av.open(str(path), "w") as out:
        for k, v in (metadata or {}).items():
            out.metadata[k] = v
        vs = out.add_stream(codec, rate=rate, options=options)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            vs.options = {**options, "preset": "ultrafast", "tune": "zerolatency" if not gop else "film"}
        for k, v in (stream_metadata or {}).items():
            vs.metadata[k] = v
        if timecode:
            vs.metadata["timecode"] = timecode
        as_ = None
        if audio is not None:
            acodec = audio_codec or ("pcm_s16le" if path.suffix.lower() in (".avi", ".wav") else "aac")
            layout = "mono" if channels == 1 else "stereo"
            as_ = out.add_stream(acodec, rate=sample_rate, layout=layout)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_fn(i, width, height), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if as_ is not None:
            _encode_audio(out, as_, audio, float(frames / rate), sample_rate, channels)
    return path


def _encode_audio(out, stream, signal, seconds: float, sample_rate: int, channels: int) -> None:
    total = round(seconds * sample_rate)
    fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
    chunk = stream.codec_context.frame_size or 1024
    layout = "mono" if channels == 1 else "stereo"
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        t = (start + np.arange(n)) / sample_rate
        mono = np.asarray(signal(t), dtype=np.float32)
        planar = np.repeat(mono[None, :], channels, axis=0)
        if fmt == "s16":
            data = (np.clip(planar.T, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(data, format="s16", layout=layout)
        else:
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def make_audio(
    path: str | os.PathLike[str],
    *,
    seconds: float = 1.0,
    sample_rate: int = 48000,
    channels: int = 1,
    signal: Callable[[np.ndarray], np.ndarray] | None = None,
    codec: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """An audio file (WAV/FLAC/MP3/M4A by suffix) holding ``signal`` or a 440 Hz tone."""
    path = Path(path)
    suffix = path.suffix.lower()
    codec = codec or {".wav": "pcm_s16le", ".flac": "flac", ".mp3": "libmp3lame", ".m4a": "aac"}.get(suffix, "aac")
    with av.open(str(path), "w") as out:
        for k, v in (metadata or {}).items():
            out.metadata[k] = v
        stream = out.add_stream(codec, rate=sample_rate, layout="mono" if channels == 1 else "stereo")
        _encode_audio(out, stream, signal or tone(), seconds, sample_rate, channels)
    return path


def make_image(
    path: str | os.PathLike[str],
    *,
    width: int = 640,
    height: int = 480,
    exif: Mapping[int, object] | None = None,
    exif_ifd: Mapping[int, object] | None = None,
    gps: Mapping[int, object] | None = None,
    frame_fn: FrameFn = bars,
) -> Path:
    """A still (JPEG/PNG/TIFF/WebP by suffix) with EXIF tags by numeric id: ``exif`` for IFD0 (Make,
    Model, Orientation), ``exif_ifd`` for the Exif sub-IFD (DateTimeOriginal, FNumber...), ``gps`` for GPS."""
    path = Path(path)
    img = Image.fromarray(frame_fn(0, width, height))
    kwargs: dict[str, object] = {}
    if exif or exif_ifd or gps:
        ex = Image.Exif()
        for tag, value in (exif or {}).items():
            ex[tag] = value
        if exif_ifd:
            sub = ex.get_ifd(0x8769)
            sub.update(exif_ifd)
        if gps:
            ex.get_ifd(0x8825).update(gps)
        kwargs["exif"] = ex.tobytes()
    img.save(path, **kwargs)
    return path
