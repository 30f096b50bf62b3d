"""The thing being probed: a path or a seekable file object, its size, its first bytes and a verdict
on what it looks like, so bad input fails early with a clear reason instead of a decoder error."""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import ProbeError
from .names import AVIF_BRANDS, HEIF_BRANDS

HEAD_SIZE = 8192

# route verdicts
IMAGE = "image"  # Pillow (and pillow-heif) reads it
AV = "av"  # PyAV reads it
UNKNOWN = "unknown"  # no magic we know: try PyAV, then Pillow

QT_TOP_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot", b"uuid"}


@dataclass
class Source:
    """An open input with random access; ``close()`` only closes what we opened."""

    fh: IO[bytes]
    size: int
    name: str  # for messages and the extension hint
    ext: str  # lower-case extension without the dot
    path: str | bytes | None = None  # filesystem path when there is one
    head: bytes = b""
    owned: bool = False
    _tail: bytes | None = field(default=None, repr=False)

    def read_at(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (fewer at the end of the file)."""
        if offset < 0 or n <= 0 or offset >= self.size:
            return b""
        if offset + n <= len(self.head):
            return self.head[offset: offset + n]
        if self.path is not None:
            self.fh.seek(offset)  # our own handle: libavformat reads the path through its own
            return self.fh.read(n)
        # a caller's file object is shared with libavformat, which expects it where it left it
        pos = self.fh.tell()
        try:
            self.fh.seek(offset)
            return self.fh.read(n)
        finally:
            self.fh.seek(pos)

    def tail(self, n: int = 4096) -> bytes:
        """The last ``n`` bytes (cached), for end markers like JPEG EOI or PNG IEND."""
        if self._tail is None or len(self._tail) < min(n, self.size):
            self._tail = self.read_at(max(0, self.size - n), n)
        return self._tail[-n:]

    def rewind(self) -> None:
        self.fh.seek(0)

    def close(self) -> None:
        if self.owned:
            self.fh.close()


def open_source(source: Any, name: str | None) -> Source:
    """Open ``source`` (path or seekable binary file object) and read its head.

    A missing file raises FileNotFoundError unchanged: the scanner treats that as a vanished file.
    """
    if isinstance(source, (str, bytes, os.PathLike)):
        path = os.fspath(source)
        if not stat.S_ISREG(os.stat(path).st_mode):  # before open(): a FIFO would block it
            raise ProbeError("not a regular file")
        fh = open(path, "rb")  # noqa: SIM115 - closed by Source.close()
        try:
            st = os.fstat(fh.fileno())
            display = os.fsdecode(path) if isinstance(path, bytes) else path
            src = Source(fh=fh, size=st.st_size, name=name or os.path.basename(display), ext="", path=path,
                         owned=True)
        except BaseException:
            fh.close()
            raise
    elif hasattr(source, "read") and hasattr(source, "seek"):
        try:
            if hasattr(source, "seekable") and not source.seekable():
                raise ProbeError("cannot probe a stream that is not seekable")
            size = source.seek(0, io.SEEK_END)
            size = source.tell() if size is None else size
            source.seek(0)
        except (io.UnsupportedOperation, AttributeError) as exc:
            raise ProbeError(f"cannot probe a stream that is not seekable ({exc})") from None
        guess = name or getattr(source, "name", None)  # an int for os.fdopen() files
        display = os.fsdecode(guess) if isinstance(guess, (str, bytes, os.PathLike)) else ""
        src = Source(fh=source, size=int(size), name=os.path.basename(display) or "<stream>", ext="")
    else:
        raise TypeError(f"probe_file() needs a path or a binary file object, not {type(source).__name__}")
    src.ext = os.path.splitext(src.name)[1].lstrip(".").lower()
    try:
        if src.size == 0:
            raise ProbeError("empty file (0 bytes)")
        src.fh.seek(0)
        src.head = src.fh.read(min(src.size, HEAD_SIZE))
        if not src.head:
            raise ProbeError("empty file (no data could be read)")
    except BaseException:
        src.close()
        raise
    return src


# -- sniffing -------------------------------------------------------------------------------------------

def sniff(src: Source) -> str:
    """Route by content, not by name: IMAGE, AV or UNKNOWN; raise ProbeError for text and zeros."""
    h = src.head
    if h[:3] == b"\xff\xd8\xff" or h[:8] == b"\x89PNG\r\n\x1a\n" or h[:6] in (b"GIF87a", b"GIF89a"):
        return IMAGE
    if h[:4] in (b"II*\x00", b"MM\x00*") or (h[:4] == b"RIFF" and h[8:12] == b"WEBP"):
        return IMAGE
    if h[:2] == b"BM" and len(h) >= 18 and int.from_bytes(h[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
        return IMAGE
    if h[4:8] == b"ftyp":
        brand = h[8:12]
        if brand in HEIF_BRANDS or brand in AVIF_BRANDS:
            return IMAGE
        return AV
    if h[4:8] in QT_TOP_BOXES:
        return AV
    if h[:4] in (b"RIFF", b"RF64", b"OggS", b"fLaC", b"FORM", b"\x1aE\xdf\xa3"):
        return AV
    if h[:3] == b"ID3":
        return AV
    if h[:9] == b"YUV4MPEG2":
        return AV
    if not h.strip(b"\x00"):
        tail = src.tail(4096)
        if not tail.strip(b"\x00"):
            raise ProbeError("not a media file (only zero bytes: an incomplete copy or preallocated file?)")
    if looks_like_text(h):
        raise ProbeError("not a media file (looks like text)")
    return UNKNOWN


_CTRL = bytes(range(0x20)).translate(None, b"\t\n\r\f\x0b\x1b") + b"\x7f"


def looks_like_text(data: bytes) -> bool:
    """True for plain text (UTF-8 or mostly printable 8-bit), false for anything with binary bytes."""
    sample = data[:4096]
    if not sample or b"\x00" in sample:
        return False
    if sample.translate(None, _CTRL) != sample:
        return False
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if len(data) > len(sample) and exc.start >= len(sample) - 3:
            return True  # a multi-byte character cut by the sample boundary
    high = sum(1 for b in sample if b >= 0x80)
    return high <= len(sample) // 10  # a few latin-1 accents in otherwise ASCII text
