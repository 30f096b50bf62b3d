"""Which files the indexer catalogues, decided from the name alone so that walking costs no reads."""

from __future__ import annotations

VIDEO_EXTS = frozenset(
    ["mp4", "m4v", "mov", "qt", "mkv", "webm", "avi", "mts", "m2ts", "ts", "mxf", "mpg", "mpeg", "m2v", "vob", "wmv", "asf", "flv", "f4v", "3gp", "3g2", "dv", "ogv", "y4m", "r3d", "braw", "crm", "insv", "lrv", "hevc", "h264", "264"]
)
AUDIO_EXTS = frozenset(["wav", "bwf", "w64", "rf64", "mp3", "flac", "aac", "m4a", "m4b", "ogg", "oga", "opus", "aif", "aiff", "aifc", "wma", "ac3", "eac3", "dts", "mka", "caf"])
IMAGE_EXTS = frozenset(
    ["jpg", "jpeg", "jpe", "png", "tif", "tiff", "heic", "heif", "hif", "avif", "webp", "gif", "bmp", "dng", "cr2", "cr3", "nef", "nrw", "arw", "srf", "sr2", "raf", "orf", "rw2", "pef", "srw", "x3f", "exr", "dpx", "tga", "psd", "jxl"]
)

_KIND_BY_EXT: dict[bytes, str] = {}
for _kind, _exts in (("video", VIDEO_EXTS), ("audio", AUDIO_EXTS), ("image", IMAGE_EXTS)):
    for _ext in _exts:
        _KIND_BY_EXT[_ext.encode()] = _kind

KINDS = ("video", "audio", "image")

# Names a NAS or a desktop OS puts beside media that are never media themselves.
IGNORED_DIRS = frozenset(
    n.encode() for n in ("@eaDir", "#recycle", "#snapshot", "$RECYCLE.BIN", "System Volume Information",
                         "lost+found", ".Trashes", ".Spotlight-V100", ".fseventsd", ".snapshot")
)


def split_ext(name: bytes) -> bytes:
    """Lower-case extension without the dot (b'' when there is none)."""
    dot = name.rfind(b".")
    return name[dot + 1:].lower() if dot > 0 else b""


def kind_of_ext(ext: bytes) -> str | None:
    """'video', 'audio' or 'image' for a lower-case extension (no dot); None for anything else."""
    return _KIND_BY_EXT.get(ext)


def kind_of(name: bytes) -> str | None:
    """'video', 'audio' or 'image' for a file name we catalogue; None for anything else."""
    if name[:1] == b".":
        return None  # hidden files, AppleDouble '._x.mov' resource forks
    dot = name.rfind(b".")
    if dot <= 0:
        return None
    return _KIND_BY_EXT.get(name[dot + 1:].lower())


def is_ignored_dir(name: bytes) -> bool:
    return name[:1] == b"." or name in IGNORED_DIRS
