"""Stills: size, mode, orientation and EXIF (camera, exposure, date, GPS) with Pillow and pillow-heif.

Only headers are read (Pillow opens lazily, nothing is decoded), so a 50 MB photo probes as fast as
a thumbnail. HEIF/HEIC support is registered on first use so importing the package stays cheap.

Pixel aspect: a PNG whose pHYs chunk gives unequal pixels per metre reports ``sample_aspect_ratio`` on its
stream, as a movie does (EXR and DPX plates go through PyAV, whose decoders read their headers' pixel aspect).
"""

from __future__ import annotations

import threading
from fractions import Fraction
from typing import Any

from ..errors import ProbeError
from . import isobmff
from .names import PIL_FORMATS
from .source import Source
from .tags import clean_text, epoch, iso, make_gps, parse_date

_heif_lock = threading.Lock()
_heif_state: bool | None = None  # None: not tried; True: registered; False: pillow-heif missing


def ensure_heif() -> bool:
    """Register pillow-heif's opener once (lazily, thread-safe); False when it is not installed."""
    global _heif_state
    if _heif_state is None:
        with _heif_lock:
            if _heif_state is None:
                try:
                    import pillow_heif

                    pillow_heif.register_heif_opener()
                    _heif_state = True
                except ImportError:
                    _heif_state = False
    return bool(_heif_state)


# EXIF tag ids
IFD_EXIF, IFD_GPS = 0x8769, 0x8825
MAKE, MODEL, SOFTWARE, ORIENTATION, DATETIME, ARTIST = 0x010F, 0x0110, 0x0131, 0x0112, 0x0132, 0x013B
EXPOSURE_TIME, F_NUMBER, EXPOSURE_PROGRAM, ISO_SPEED = 0x829A, 0x829D, 0x8822, 0x8827
DT_ORIGINAL, DT_DIGITIZED = 0x9003, 0x9004
OFFSET, OFFSET_ORIGINAL, OFFSET_DIGITIZED = 0x9010, 0x9011, 0x9012
SUBSEC, SUBSEC_ORIGINAL, SUBSEC_DIGITIZED = 0x9290, 0x9291, 0x9292
EXPOSURE_BIAS, METERING_MODE, FLASH, FOCAL_LENGTH = 0x9204, 0x9207, 0x9209, 0x920A
PIXEL_X, PIXEL_Y, WHITE_BALANCE, FOCAL_35MM = 0xA002, 0xA003, 0xA403, 0xA405
BODY_SERIAL, LENS_MAKE, LENS_MODEL, LENS_SERIAL = 0xA431, 0xA433, 0xA434, 0xA435

_EXPOSURE_PROGRAMS = {1: "manual", 2: "normal", 3: "aperture priority", 4: "shutter priority",
                      5: "creative", 6: "action", 7: "portrait", 8: "landscape"}
_METERING = {1: "average", 2: "center-weighted", 3: "spot", 4: "multi-spot", 5: "pattern", 6: "partial"}


def _fraction(v: Any) -> Fraction | None:
    """An EXIF rational (Pillow IFDRational, tuple or number) as a Fraction; None for x/0."""
    try:
        if isinstance(v, tuple) and len(v) == 2:
            num, den = int(v[0]), int(v[1])
        elif hasattr(v, "numerator") and hasattr(v, "denominator"):
            num, den = int(v.numerator), int(v.denominator)
        elif isinstance(v, (int, float)):
            return Fraction(v).limit_denominator(1_000_000)
        else:
            return None
    except (TypeError, ValueError, OverflowError):
        return None
    return Fraction(num, den) if den else None


def _number(v: Any, digits: int = 4) -> float | None:
    if isinstance(v, (tuple, list)) and v and not (len(v) == 2 and all(isinstance(x, int) for x in v)):
        v = v[0]
    f = _fraction(v)
    return round(float(f), digits) if f is not None else None


def _int(v: Any) -> int | None:
    if isinstance(v, (tuple, list)):
        v = v[0] if v else None
    if isinstance(v, bytes) and len(v) == 1:
        return v[0]
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _dms(v: Any) -> float | None:
    if not isinstance(v, (tuple, list)) or not v:
        return _number(v, 9)
    total = 0.0
    for i, part in enumerate(v[:3]):
        f = _fraction(part)
        if f is None:
            return None
        total += float(f) / (60 ** i)
    return total


def read_gps(gps: dict[int, Any]) -> dict[str, Any]:
    """The GPS IFD as numbers: lat/lon (signed degrees), alt (m), time (UTC), direction."""
    out: dict[str, Any] = {}
    lat, lon = _dms(gps.get(2)), _dms(gps.get(4))
    lat_ref, lon_ref = clean_text(gps.get(1)), clean_text(gps.get(3))
    if lat is not None and lat_ref and lat_ref[0] in "NSns":
        out["lat"] = round(-lat if lat_ref[0] in "Ss" else lat, 7)
    if lon is not None and lon_ref and lon_ref[0] in "EWew":
        out["lon"] = round(-lon if lon_ref[0] in "Ww" else lon, 7)
    alt = _number(gps.get(6), 3)
    if alt is not None:
        out["alt"] = -alt if _int(gps.get(5)) == 1 else alt
    date, tstamp = clean_text(gps.get(29)), gps.get(7)
    if date and isinstance(tstamp, (tuple, list)) and len(tstamp) == 3:
        parts = [_fraction(p) for p in tstamp]
        if all(p is not None for p in parts):
            h, m, s = (float(p) for p in parts)  # type: ignore[arg-type]
            dt = parse_date(f"{date} {int(h):02d}:{int(m):02d}:{int(s):02d}Z")
            if dt is not None:
                out["time"] = iso(dt)
    direction = _number(gps.get(17), 2)
    if direction is not None:
        out["direction"] = direction
    speed = _number(gps.get(13), 3)
    if speed is not None:
        out["speed"] = speed
        unit = clean_text(gps.get(12))
        if unit:
            out["speed_unit"] = {"K": "km/h", "M": "mph", "N": "knots"}.get(unit.upper(), unit)
    return out


def read_exif(exif: Any) -> dict[str, Any]:
    """IFD0, Exif and GPS IFDs as plain JSON values (rationals as 'num/den' plus a float)."""
    out: dict[str, Any] = {}
    sub = exif.get_ifd(IFD_EXIF) if IFD_EXIF in exif else {}

    def text(key: str, v: Any) -> None:
        s = clean_text(v)
        if s:
            out[key] = s

    text("make", exif.get(MAKE))
    text("model", exif.get(MODEL))
    text("software", exif.get(SOFTWARE))
    text("artist", exif.get(ARTIST))
    orientation = _int(exif.get(ORIENTATION))
    if orientation is not None and 1 <= orientation <= 8:
        out["orientation"] = orientation
    text("datetime", exif.get(DATETIME))
    text("datetime_original", sub.get(DT_ORIGINAL))
    text("datetime_digitized", sub.get(DT_DIGITIZED))
    text("offset", sub.get(OFFSET))
    text("offset_original", sub.get(OFFSET_ORIGINAL))
    text("offset_digitized", sub.get(OFFSET_DIGITIZED))
    text("subsec_original", sub.get(SUBSEC_ORIGINAL))
    text("lens_make", sub.get(LENS_MAKE))
    text("lens_model", sub.get(LENS_MODEL))
    text("lens_serial", sub.get(LENS_SERIAL))
    text("serial", sub.get(BODY_SERIAL))
    exposure = _fraction(sub.get(EXPOSURE_TIME))
    if exposure is not None and exposure > 0:
        out["exposure_time"] = f"{exposure.numerator}/{exposure.denominator}"
        out["exposure_seconds"] = round(float(exposure), 6)
    for key, tag, digits in (("f_number", F_NUMBER, 2), ("focal_length", FOCAL_LENGTH, 2),
                             ("exposure_bias", EXPOSURE_BIAS, 2)):
        v = _number(sub.get(tag), digits)
        if v is not None:
            out[key] = v
    focal35 = _int(sub.get(FOCAL_35MM))
    if focal35:
        out["focal_length_35mm"] = focal35
    iso_speed = _int(sub.get(ISO_SPEED))
    if iso_speed:
        out["iso"] = iso_speed
    flash = _int(sub.get(FLASH))
    if flash is not None:
        out["flash"] = flash
        out["flash_fired"] = bool(flash & 1)
    wb = _int(sub.get(WHITE_BALANCE))
    if wb in (0, 1):
        out["white_balance"] = "auto" if wb == 0 else "manual"
    program = _EXPOSURE_PROGRAMS.get(_int(sub.get(EXPOSURE_PROGRAM)) or 0)
    if program:
        out["exposure_program"] = program
    metering = _METERING.get(_int(sub.get(METERING_MODE)) or 0)
    if metering:
        out["metering_mode"] = metering
    px, py = _int(sub.get(PIXEL_X)), _int(sub.get(PIXEL_Y))
    if px and py:
        out["pixel_width"], out["pixel_height"] = px, py
    if IFD_GPS in exif:
        out["gps"] = read_gps(exif.get_ifd(IFD_GPS))
    return out


def exif_created(ex: dict[str, Any]) -> dict[str, Any] | None:
    """DateTimeOriginal (with OffsetTimeOriginal and SubSecTimeOriginal), then Digitized, then DateTime."""
    for key, zone, subsec, source in (
        ("datetime_original", "offset_original", "subsec_original", "exif:DateTimeOriginal"),
        ("datetime_digitized", "offset_digitized", None, "exif:DateTimeDigitized"),
        ("datetime", "offset", None, "exif:DateTime"),
    ):
        dt = parse_date(ex.get(key), zone=ex.get(zone), subsec=ex.get(subsec) if subsec else None)
        if dt is not None:
            return {"value": iso(dt), "source": source, "utc": epoch(dt)}
    return None


def _camera(ex: dict[str, Any]) -> dict[str, str] | None:
    cam = {k: ex[src] for k, src in (("make", "make"), ("model", "model"), ("software", "software"),
                                     ("lens", "lens_model"), ("lens_make", "lens_make"), ("serial", "serial"))
           if ex.get(src)}
    return cam or None


def _is_motion_xmp(xmp: Any) -> bool:
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", "replace")
    if not isinstance(xmp, (bytes, bytearray)):
        return False
    return any(m in xmp for m in (b'MotionPhoto="1"', b"MotionPhoto>1<", b'MicroVideo="1"', b"MicroVideo>1<"))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MAX_CHUNKS = 64  # pHYs precedes IDAT: a header with more chunks than this before it is not worth walking


def png_sample_aspect(src: Source) -> Fraction | None:
    """A PNG's sample aspect ratio (width / height of a pixel) from a pHYs chunk in pixels per metre; None when
    there is none, it says square pixels, its unit is unknown, or the header is cut short or malformed.

    Read here from the header bytes rather than from Pillow: Pillow turns per-metre units into float dpi, and
    the exact ratio is what a plate needs. The direction is the PNG specification's and libpng's
    (png_get_pixel_aspect_ratio = y pixels per unit / x pixels per unit: more pixels per metre across means
    narrower pixels). An aspect-only pHYs (unit 0) is not read: FFmpeg, which writes one for every frame of an
    anamorphic movie it turns into PNGs, writes it the other way round (x / y), so the file alone cannot tell a
    2x squeeze from a 1/2 one, and a guessed squeeze is worse than none (`--pixel-aspect` is for those)."""
    if src.head[:8] != _PNG_SIGNATURE:
        return None
    pos = 8
    for _ in range(_PNG_MAX_CHUNKS):
        header = src.read_at(pos, 8)
        if len(header) < 8:
            return None
        length, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if kind in (b"IDAT", b"IEND") or length > 0x7FFFFFFF:
            return None
        if kind == b"pHYs":
            body = src.read_at(pos + 8, 9)
            if length != 9 or len(body) < 9 or body[8] != 1:  # 1: the metre
                return None
            x, y = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            if not x or not y or x == y:
                return None
            return Fraction(y, x)
        pos += 12 + length  # length, type, data, CRC
    return None


def probe_image(src: Source) -> dict[str, Any]:
    """Everything a still tells without decoding its pixels."""
    from PIL import Image

    warnings: list[str] = []
    layout = None
    is_bmff = src.head[4:8] == b"ftyp"
    if is_bmff:
        ensure_heif()
        layout = isobmff.walk(src.read_at, src.size, tracks=False, max_boxes=isobmff.box_limit(src.path is None))
        if layout.overrun is not None:
            warnings.append(f"file looks truncated: box '{layout.overrun.type.decode('latin-1')}' runs past "
                            "the end of the file")
    src.rewind()
    try:
        with Image.open(src.fh) as img:
            fmt = img.format or "unknown"
            width, height = img.size
            mode = img.mode
            long_name = getattr(img, "format_description", None)
            info = dict(img.info)
            exif_obj = img.getexif()
            ex = read_exif(exif_obj) if exif_obj else {}
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError, struct.error...)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if reason.startswith("cannot identify image file"):  # Pillow appends the repr of our file object
            reason = "unknown format or corrupt data"
        if warnings:
            raise ProbeError(f"image looks truncated or corrupt ({reason})") from None
        raise ProbeError(f"not a readable image ({reason})") from None

    demuxer, container, codec = PIL_FORMATS.get(fmt, (None, fmt.lower(), None))
    if fmt == "HEIF" and is_bmff:
        brands = src.head[8:12] + src.head[16:64]
        codec = "av1" if b"avif" in brands and b"heic" not in brands else "hevc"
    image: dict[str, Any] = {"width": width, "height": height, "mode": mode, "format": fmt}
    orientation = ex.get("orientation")
    if fmt == "HEIF":
        # libheif applies the HEIF rotation/mirror itself and resets EXIF Orientation to 1, so width and
        # height above are already as displayed; keep what the EXIF said for reference
        original = _int(info.get("original_orientation"))
        if original and 1 <= original <= 8:
            ex["orientation"] = original
        orientation = 1
        image["orientation_applied"] = True
        if info.get("bit_depth"):
            image["bit_depth"] = int(info["bit_depth"])
    elif mode in ("I;16", "I;16B", "I;16L"):
        image["bit_depth"] = 16
    elif mode in ("RGB", "RGBA", "L", "LA", "P", "CMYK", "YCbCr"):
        image["bit_depth"] = 8
    if orientation:
        image["orientation"] = orientation
    if info.get("icc_profile"):
        image["icc_profile"] = True
    if ex:
        image["exif"] = ex

    stream: dict[str, Any] = {k: v for k, v in (("index", 0), ("type", "video"), ("codec", codec), ("width", width),
                                                ("height", height)) if v is not None}
    sar = png_sample_aspect(src) if fmt == "PNG" else None
    if sar is not None:  # as avprobe reports a movie's: the ratio, and the size on screen
        stream["sample_aspect_ratio"] = f"{sar.numerator}/{sar.denominator}"
        stream["display_width"], stream["display_height"] = round(width * sar), height
    probe: dict[str, Any] = {
        "kind": "image",
        "size": src.size,
        "format": {k: v for k, v in (("name", demuxer), ("long_name", long_name), ("container", container))
                   if v},
        "streams": [stream],
        "image": image,
        "warnings": warnings,
    }
    created = exif_created(ex)
    if created:
        probe["created"] = created
    camera = _camera(ex)
    if camera:
        probe["camera"] = camera
    g = ex.get("gps") or {}
    fix = make_gps(g.get("lat"), g.get("lon"), g.get("alt"))
    if fix:
        fix["source"] = "exif"
        probe["gps"] = fix

    # motion photos: Samsung HEIC keeps the video in a top-level 'mpvd' box; Google/Samsung JPEGs say so in XMP
    mpvd = layout.find(b"mpvd") if layout else None
    if mpvd is not None:
        image["motion_photo"] = True
        image["motion_video"] = {"offset": mpvd.body, "size": mpvd.size - mpvd.header}
    elif _is_motion_xmp(info.get("xmp")):
        image["motion_photo"] = True
    if image.get("motion_photo"):
        probe["motion_photo"] = True

    warnings.extend(_end_check(src, fmt, image))
    return probe


def _end_check(src: Source, fmt: str, image: dict[str, Any]) -> list[str]:
    """Cheap truncation checks from the last bytes: JPEG EOI, PNG IEND, GIF trailer, RIFF size."""
    tail = src.tail(4096)
    if fmt in ("JPEG", "MPO") and not image.get("motion_photo"):
        # 0xFFD9 cannot occur inside entropy-coded data (0xFF is stuffed), so it is the end marker
        if b"\xff\xd9" not in tail and not tail.endswith(b"SEFT"):
            return ["JPEG end marker missing: the file looks truncated (the image may be cut off)"]
    elif fmt == "PNG" and b"IEND" not in tail[-64:]:
        return ["PNG IEND chunk missing: the file looks truncated"]
    elif fmt == "GIF" and not tail.rstrip(b"\x00").endswith(b";"):
        return ["GIF trailer missing: the file looks truncated"]
    elif fmt == "WEBP" and src.head[:4] == b"RIFF":
        declared = int.from_bytes(src.head[4:8], "little") + 8
        if declared > src.size:
            return [f"file looks truncated: RIFF header says {declared} bytes, file has {src.size}"]
    return []
