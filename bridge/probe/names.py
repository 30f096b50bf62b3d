"""Name tables: FFmpeg enum values to the names ffprobe prints, and short container names.

PyAV 18 exposes colour properties as bare integers; ffprobe prints FFmpeg's names for them
(``av_color_*_name``). The tables copy those names so a probe reads like ffprobe's output.
"""

from __future__ import annotations

# AVColorPrimaries -> av_color_primaries_name()
COLOR_PRIMARIES = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
    9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}

# AVColorTransferCharacteristic -> av_color_transfer_name()
COLOR_TRANSFER = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
    14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}

# AVColorSpace -> av_color_space_name()
COLOR_SPACE = {
    0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
    9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc", 13: "chroma-derived-c",
    14: "ictcp", 15: "ipt-c2", 16: "ycgco-re", 17: "ycgco-ro",
}

# AVColorRange -> av_color_range_name()
COLOR_RANGE = {1: "tv", 2: "pc"}

# AVFieldOrder -> ffprobe's field_order
FIELD_ORDER = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
INTERLACED = {"tt", "bb", "tb", "bt"}

# transfer characteristics that make a stream HDR
HDR_TRANSFER = {"smpte2084": "pq", "arib-std-b67": "hlg"}

# ISO BMFF major brands that mean a HEIF/AVIF still rather than a movie
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"mif2", b"MiHE", b"MiHA", b"MiHB"}
AVIF_BRANDS = {b"avif"}

# FFmpeg demuxer name (first of the comma list) -> short container name
_SHORT = {
    "matroska": "matroska", "mpegts": "mpegts", "avi": "avi", "mp3": "mp3", "wav": "wav",
    "flac": "flac", "ogg": "ogg", "mxf": "mxf", "asf": "asf", "flv": "flv", "mpeg": "mpegps",
    "aiff": "aiff", "w64": "w64", "caf": "caf", "aac": "aac", "ac3": "ac3", "rm": "rm",
    "dv": "dv", "gif": "gif", "webm_dash_manifest": "webm", "yuv4mpegpipe": "y4m", "wv": "wavpack",
}

# Pillow format -> (ffprobe-style demuxer name, short container, ffprobe-style codec name)
PIL_FORMATS = {
    "JPEG": ("jpeg_pipe", "jpeg", "mjpeg"),
    "MPO": ("jpeg_pipe", "jpeg", "mjpeg"),
    "PNG": ("png_pipe", "png", "png"),
    "WEBP": ("webp_pipe", "webp", "webp"),
    "TIFF": ("tiff_pipe", "tiff", "tiff"),
    "GIF": ("gif", "gif", "gif"),
    "BMP": ("bmp_pipe", "bmp", "bmp"),
    "HEIF": ("mov,mp4,m4a,3gp,3g2,mj2", "heif", "hevc"),
    "AVIF": ("mov,mp4,m4a,3gp,3g2,mj2", "avif", "av1"),
}


def container_short(format_name: str, major_brand: str | None, ext: str) -> str:
    """A short container name for filters: mov/mp4/heif for ISO BMFF by brand, webm by extension."""
    first = format_name.split(",")[0]
    if first == "mov":
        brand = (major_brand or "").strip().encode("latin-1", "replace")
        if brand in HEIF_BRANDS:
            return "heif"
        if brand in AVIF_BRANDS:
            return "avif"
        if not brand or brand == b"qt":
            return "mov"  # QuickTime proper (brand 'qt  ', or an old file without ftyp)
        return "mp4"
    if first == "matroska":
        return "webm" if ext == "webm" else "matroska"
    if first.endswith("_pipe"):
        return first[: -len("_pipe")]
    return _SHORT.get(first, first)
