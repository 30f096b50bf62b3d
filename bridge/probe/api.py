"""probe_file(): route a file to the still or the audio/video prober and turn failures into ProbeError."""

from __future__ import annotations

import os
from typing import IO, Any

import av

from ..errors import ProbeError
from .avprobe import open_container, probe_av
from .image import probe_image
from .source import IMAGE, UNKNOWN, open_source, sniff

PathOrFile = str | bytes | os.PathLike[str] | os.PathLike[bytes] | IO[bytes]


def probe_file(source: PathOrFile, *, name: str | None = None) -> dict[str, Any]:
    """Probe a media file in-process and return a JSON-serialisable dict.

    ``source`` is a path (str, bytes or PathLike) or a seekable binary file object; ``name`` gives a
    file object's name (its extension helps format detection). Bad input raises ProbeError with a
    one-line reason; a missing file raises FileNotFoundError unchanged (the scanner's "vanished").
    """
    src = open_source(source, name)
    try:
        route = sniff(src)
        if route == IMAGE:
            try:
                return probe_image(src)
            except ProbeError:
                if src.head[4:8] != b"ftyp":
                    raise
                # a HEIF/AVIF that pillow-heif cannot read: libavformat reads some of them
        try:
            container = open_container(src)
        except ProbeError:
            if route == UNKNOWN:
                try:  # formats without a magic we sniff (TGA, PSD, ICO...): Pillow may know them
                    return probe_image(src)
                except ProbeError:
                    pass
            raise
        try:
            return probe_av(src, container)
        except av.error.FFmpegError as exc:
            reason = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).splitlines()[0]
            raise ProbeError(f"cannot read media ({reason})") from None
        finally:
            container.close()
    finally:
        src.close()
