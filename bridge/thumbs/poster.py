"""Poster frames for videos and thumbnails for stills.

Videos: seek to keyframes at several points of the clip (no full decode), decode the first frame after
each seek at reduced size, and keep the best-looking one: black, flash/white and flat frames (slates,
fades, lens cap) are rejected; contrast, sharpness and colour are preferred. If every candidate is
rejected the best of them is still used, so a thumbnail always exists for a readable clip.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import av
import numpy as np
from PIL import Image, ImageOps

from ..errors import ThumbnailError

ANALYSE_WIDTH = 160          # candidates are scored on this small a picture
BLACK_LUMA = 0.07            # mean luma (0..1) below this: black
WHITE_LUMA = 0.93            # above this: flash / white
FLAT_STD = 0.025             # luma standard deviation below this: uniform
POSITIONS = (0.05, 0.18, 0.31, 0.44, 0.57, 0.7, 0.83)

Source = str | bytes | os.PathLike[str] | IO[bytes]


@dataclass
class Candidate:
    time: float | None
    image: Image.Image        # full frame at decode size (RGB)
    luma: float
    std: float
    sharp: float
    colour: float
    rejected: str | None = None

    @property
    def score(self) -> float:
        base = 0.45 * min(self.std / 0.25, 1) + 0.35 * min(self.sharp / 0.05, 1) + 0.2 * min(self.colour / 0.3, 1)
        return base * (0.2 if self.rejected else 1.0)


def _measure(img: Image.Image) -> tuple[float, float, float, float]:
    small = img.copy()
    small.thumbnail((ANALYSE_WIDTH, ANALYSE_WIDTH))
    rgb = np.asarray(small, dtype=np.float32) / 255.0
    luma = rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    lap = np.abs(4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:])
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colour = float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))
    return float(luma.mean()), float(luma.std()), float(lap.mean()) if lap.size else 0.0, colour


def _candidate(img: Image.Image, t: float | None) -> Candidate:
    luma, std, sharp, colour = _measure(img)
    c = Candidate(t, img, luma, std, sharp, colour)
    if luma < BLACK_LUMA:
        c.rejected = "black"
    elif luma > WHITE_LUMA:
        c.rejected = "flash"
    elif std < FLAT_STD:
        c.rejected = "flat"
    return c


def _local_path(source: str | bytes | os.PathLike[str]) -> str:
    """The path of a regular, non-empty file: a FIFO or device named .mp4 is refused (opening one would
    block or read forever) and an empty file gets its own reason."""
    path = os.fsdecode(os.fspath(source))
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ThumbnailError("not a regular file")
    if st.st_size == 0:
        raise ThumbnailError("empty file (0 bytes)")
    return path


def _open(source: Source) -> Any:
    if isinstance(source, str | bytes | os.PathLike):
        # 'file:' keeps libavformat from reading a name like 'a:b.mp4' or 'concat:...' as a protocol
        src: Any = "file:" + _local_path(source)
    else:
        src = source
    try:
        return av.open(src, "r", metadata_errors="ignore")
    except FileNotFoundError:
        raise
    except (av.FFmpegError, ValueError, UnicodeDecodeError) as exc:
        raise ThumbnailError(f"not a readable video ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:200]


def _decode_at(container: Any, stream: Any, seconds: float | None, decode_w: int) -> Image.Image | None:
    """First decodable frame at or after the keyframe before ``seconds`` (the start when None)."""
    if seconds is not None and seconds > 0:
        ts = int(seconds / stream.time_base) + (stream.start_time or 0)
        container.seek(ts, stream=stream, backward=True, any_frame=False)
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue
        for frame in frames:
            w = min(decode_w, frame.width)
            h = max(2, round(frame.height * w / frame.width))
            return frame.to_image(width=w, height=h)
    return None


def _rotate(img: Image.Image, rotation: float) -> Image.Image:
    """Display-matrix rotation (ffprobe's sign: -90 means turned clockwise for display)."""
    r = round(rotation) % 360
    if r == 0:
        return img
    return img.rotate(r, expand=True)


def probed_rotation(source: Source) -> float:
    """The primary video stream's display rotation, from our probe (PyAV does not expose side data)."""
    from ..errors import ProbeError
    from ..probe import probe_file

    try:
        probe = probe_file(source)
    except (ProbeError, OSError):
        return 0.0
    finally:
        if hasattr(source, "seek"):
            source.seek(0)  # type: ignore[union-attr]
    video = next((s for s in probe.get("streams", []) if s.get("type") == "video"), {})
    return float(video.get("rotation") or 0)


def video_poster(source: Source, *, max_size: int, rotation: float | None = None) -> tuple[Image.Image, Candidate, int]:
    """Pick a poster frame: (image at up to max_size, the chosen candidate, candidates looked at)."""
    container = _open(source)
    try:
        stream = next((s for s in container.streams if s.type == "video"), None)
        if stream is None:
            raise ThumbnailError("no video stream")
        for other in container.streams:  # demuxers then skip their samples: less to read (remote clips)
            if other.index != stream.index:
                other.discard = av.stream.Discard.all
        stream.thread_type = "AUTO"
        duration = None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        decode_w = max(max_size * 2, 320)
        times: list[float | None] = [None] if not duration or duration < 0.5 else [duration * p for p in POSITIONS]
        cands: list[Candidate] = []
        for t in times:
            try:
                img = _decode_at(container, stream, t, decode_w)
            except av.FFmpegError:
                continue
            if img is not None:
                cands.append(_candidate(img, t))
        if not cands and times != [None]:
            with contextlib.suppress(av.FFmpegError):
                container.seek(0)
                img = _decode_at(container, stream, None, decode_w)
                if img is not None:
                    cands.append(_candidate(img, 0.0))
        if not cands:
            raise ThumbnailError("no frame could be decoded (corrupt or truncated video)")
        _reject_outliers(cands)
        best = max(cands, key=lambda c: c.score)
        img = _rotate(best.image, rotation if rotation is not None else probed_rotation(source))
        sar = stream.codec_context.sample_aspect_ratio
        if sar and sar != 1 and sar.numerator and sar.denominator:
            img = img.resize((max(1, round(img.width * float(sar))), img.height))
        img.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
        return img, best, len(cands)
    finally:
        container.close()


def _reject_outliers(cands: list[Candidate]) -> None:
    """A frame much brighter than the others is a flash even when it is not pure white."""
    if len(cands) < 3:
        return
    median = float(np.median([c.luma for c in cands]))
    for c in cands:
        if c.rejected is None and c.luma > median + 0.35 and c.luma > 0.75:
            c.rejected = "flash"


def still_thumbnail(source: Source, *, max_size: int) -> Image.Image:
    """Upright (EXIF orientation applied), RGB, long side at most max_size."""
    from ..probe.image import ensure_heif

    ensure_heif()
    if isinstance(source, str | bytes | os.PathLike):
        src: Any = _local_path(source)
    else:
        src = source
    try:
        with Image.open(src) as im:
            im.draft("RGB", (max_size * 2, max_size * 2))
            im = ImageOps.exif_transpose(im)
            im.load()
            img = _to_rgb(im)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ThumbnailError(f"not a readable image ({_reason(exc)})") from None
    img.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    return img


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGB", im.size, (128, 128, 128))
        bg.paste(im, mask=im.getchannel("A"))
        return bg
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32)
        hi = float(arr.max()) or 1.0
        return Image.fromarray((arr / hi * 255).astype(np.uint8)).convert("RGB")
    if im.mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float32))
        hi = float(arr.max()) or 1.0
        return Image.fromarray(np.clip(arr / hi * 255, 0, 255).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")


def save_atomically(img: Image.Image, dest: Path, fmt: str, quality: int) -> None:
    """Write beside dest, then rename: a reader never sees half a thumbnail, a failure leaves nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if fmt == "webp":
                img.save(fh, "WEBP", quality=quality, method=4)
            else:
                img.save(fh, "JPEG", quality=quality, optimize=True, progressive=True)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def make_thumbnail(source: Source, dest: str | os.PathLike[str], *, kind: str, max_size: int = 320,
                   fmt: str = "jpeg", quality: int = 82, rotation: float | None = None) -> dict[str, Any]:
    """Write a JPEG or WebP thumbnail of ``source`` to ``dest``; returns what was chosen and why."""
    if fmt not in ("jpeg", "webp"):
        raise ThumbnailError(f"unknown thumbnail format {fmt!r} (jpeg or webp)")
    dest = Path(dest)
    if kind == "audio":
        raise ThumbnailError("no picture in an audio file")
    if kind == "image":
        img = still_thumbnail(source, max_size=max_size)
        info: dict[str, Any] = {"time": None, "score": None, "candidates": 1}
    else:
        img, best, n = video_poster(source, max_size=max_size, rotation=rotation)
        info = {"time": best.time, "score": round(best.score, 4), "candidates": n, "rejected": best.rejected}
    save_atomically(img, dest, fmt, quality)
    return {"path": str(dest), "width": img.width, "height": img.height, **info}
