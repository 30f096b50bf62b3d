"""Metadata tags to facts: capture date (keeping the zone the file states), camera, ISO 6709 GPS.

Container tags come from many writers (QuickTime mdta keys, Android keys, udta atoms, AVI INFO,
Matroska, BWF bext); these helpers pick the most trustworthy one and drop placeholders instead of
guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone

# -- dates ----------------------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"^\s*(\d{4})[-:/](\d{2})[-:/](\d{2})"  # date
    r"(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"  # time, optional seconds and fraction
    r"\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*$",  # zone
    re.IGNORECASE,
)
_TIME_ONLY = re.compile(r"^\s*\d{1,2}[:-]\d{2}[:-]\d{2}\s*$")
_ZONE_RE = re.compile(r"^\s*([+-])(\d{2}):?(\d{2})?\s*$")

# epoch zeros of Unix, QuickTime/HFS, NTP, Windows FILETIME and FAT: a clock that was never set
PLACEHOLDER_DATES = {(1970, 1, 1), (1904, 1, 1), (1900, 1, 1), (1601, 1, 1), (1980, 1, 1)}


def parse_zone(text: str | None) -> timezone | None:
    """'+03:00', '+0300', '-08', 'Z' -> tzinfo; None when absent or malformed."""
    if not text:
        return None
    t = text.strip()
    if t.upper() in ("Z", "UTC", "GMT"):
        return UTC
    m = _ZONE_RE.match(t)
    if not m:
        return None
    sign, hh, mm = m.group(1), int(m.group(2)), int(m.group(3) or 0)
    if hh > 18 or mm > 59:
        return None
    delta = timedelta(hours=hh, minutes=mm)
    return timezone(-delta if sign == "-" else delta)


def parse_date(text: str | None, *, zone: str | None = None, subsec: str | None = None) -> datetime | None:
    """A date in the common container/EXIF spellings; naive when the text states no zone.

    ``zone`` (EXIF OffsetTime*) and ``subsec`` (EXIF SubSecTime*) complete an EXIF date.
    Placeholders (zero dates, 1970/1904 epoch zero, blanks) give None.
    """
    if not text or not isinstance(text, str):
        return None
    m = _DATE_RE.match(text.replace("\x00", ""))
    if not m:
        return None
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    hh, mi, ss = int(m.group(4) or 0), int(m.group(5) or 0), int(m.group(6) or 0)
    frac = m.group(7) or (subsec.strip() if subsec and subsec.strip().isdigit() else None)
    if y == 0 or mo == 0 or d == 0:
        return None
    if (y, mo, d) in PLACEHOLDER_DATES and hh == mi == ss == 0:
        return None
    try:
        dt = datetime(y, mo, d, hh, mi, min(ss, 59), int((frac or "0")[:6].ljust(6, "0")))
    except ValueError:
        return None
    tz = parse_zone(m.group(8)) if m.group(8) else parse_zone(zone)
    return dt.replace(tzinfo=tz) if tz else dt


def iso(dt: datetime) -> str:
    """ISO 8601 with the offset when known; microseconds only when there are some."""
    return dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")


def epoch(dt: datetime) -> float:
    """Seconds since the epoch; a naive time counts as UTC so files still sort."""
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def created_from(candidates: Iterable[tuple[str, str | None]]) -> dict | None:
    """The first parseable, non-placeholder date among (source, text) in priority order."""
    for source, text in candidates:
        dt = parse_date(text)
        if dt is not None:
            return {"value": iso(dt), "source": source, "utc": epoch(dt)}
    return None


def container_date_candidates(fmt_tags: Mapping[str, str], stream_tags: list[Mapping[str, str]]
                              ) -> list[tuple[str, str | None]]:
    """Capture-date candidates from container and stream tags, most trustworthy first."""
    low = {k.lower(): v for k, v in fmt_tags.items()}
    out: list[tuple[str, str | None]] = [
        ("com.apple.quicktime.creationdate", low.get("com.apple.quicktime.creationdate")),
    ]
    # BWF bext: libavformat maps OriginationDate to "date" and OriginationTime to "creation_time"
    bext_date = low.get("origination_date") or low.get("date")
    bext_time = low.get("origination_time") or low.get("creation_time")
    if "time_reference" in low and bext_date and bext_time and _TIME_ONLY.match(bext_time):
        out.append(("bext:origination", f"{bext_date} {bext_time}"))
    # not "date": in ID3/Vorbis comments that is a release date, not when it was recorded
    for key in ("creation_time", "date_recorded", "creation_date"):
        if key in low:
            out.append((f"format:{key}", low[key]))
    for tags in stream_tags:
        if "creation_time" in tags:
            out.append(("stream:creation_time", tags["creation_time"]))
    return out


# -- GPS ------------------------------------------------------------------------------------------------

_ISO6709 = re.compile(
    r"^\s*([+-]\d{2}(?:\d{2}(?:\d{2})?)?(?:\.\d*)?)"  # latitude: DD, DDMM or DDMMSS with fraction
    r"([+-]\d{3}(?:\d{2}(?:\d{2})?)?(?:\.\d*)?)"  # longitude: DDD, DDDMM or DDDMMSS
    r"([+-]\d+(?:\.\d*)?)?"  # altitude (metres)
    r"(?:CRS[^/]*)?/?\s*$"
)


def _sexagesimal(text: str, deg_digits: int) -> float:
    sign = -1.0 if text[0] == "-" else 1.0
    body = text[1:]
    whole, _, frac = body.partition(".")
    frac_v = float("0." + frac) if frac else 0.0
    if len(whole) == deg_digits:
        v = int(whole) + frac_v
    elif len(whole) == deg_digits + 2:
        v = int(whole[:deg_digits]) + (int(whole[deg_digits:]) + frac_v) / 60
    else:
        v = int(whole[:deg_digits]) + int(whole[deg_digits:deg_digits + 2]) / 60 + (
            int(whole[deg_digits + 2:]) + frac_v) / 3600
    return sign * v


def parse_iso6709(text: str | None) -> dict | None:
    """'+32.0929+034.8620+028.516/' -> {'lat','lon','alt'}; None for junk and the 0,0 placeholder."""
    if not text or not isinstance(text, str):
        return None
    m = _ISO6709.match(text)
    if not m:
        return None
    try:
        lat = _sexagesimal(m.group(1), 2)
        lon = _sexagesimal(m.group(2), 3)
        alt = float(m.group(3)) if m.group(3) else None
    except ValueError:
        return None
    return make_gps(lat, lon, alt)


def make_gps(lat: float | None, lon: float | None, alt: float | None = None) -> dict | None:
    """A GPS fix, or None when out of range or exactly 0,0 (phones write that when they had no fix)."""
    if lat is None or lon is None or lat != lat or lon != lon:
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    out = {"lat": round(lat, 7), "lon": round(lon, 7)}
    if alt is not None and alt == alt:
        out["alt"] = round(alt, 3)
    return out


def gps_from_tags(fmt_tags: Mapping[str, str], stream_tags: list[Mapping[str, str]]) -> dict | None:
    """ISO 6709 location from QuickTime mdta, udta ©xyz ('location') or Android keys."""
    keys = ("com.apple.quicktime.location.iso6709", "location", "location-eng", "com.android.location")
    for tags in (fmt_tags, *stream_tags):
        low = {k.lower(): v for k, v in tags.items()}
        for key in keys:
            if key in low:
                fix = parse_iso6709(low[key])
                if fix is not None:
                    fix["source"] = key
                    return fix
    return None


# -- camera ---------------------------------------------------------------------------------------------

_CAMERA_KEYS = {
    "make": ("com.apple.quicktime.make", "com.android.manufacturer", "make", "manufacturer"),
    "model": ("com.apple.quicktime.model", "com.android.model", "model"),
    "software": ("com.apple.quicktime.software", "com.android.version", "software", "firmware"),
    "lens": ("com.apple.quicktime.camera.lens_model", "lens", "lens_model"),
    "serial": ("serial", "serial_number", "camera_serial_number", "com.apple.proapps.serialno"),
}


def clean_text(value: object) -> str | None:
    """A tag value as trimmed text; None for empty, NUL padding or non-text."""
    if isinstance(value, bytes):
        value = value.split(b"\x00", 1)[0].decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def camera_from_tags(fmt_tags: Mapping[str, str], stream_tags: list[Mapping[str, str]]) -> dict | None:
    """Make, model, software, lens, serial from the keys cameras and phones write."""
    out: dict[str, str] = {}
    for tags in (fmt_tags, *stream_tags):
        low = {k.lower(): v for k, v in tags.items()}
        for field_name, keys in _CAMERA_KEYS.items():
            if field_name in out:
                continue
            for key in keys:
                v = clean_text(low.get(key))
                if v:
                    out[field_name] = v
                    break
    # vendor signatures: a GoPro names its tracks "GoPro AVC" and writes a firmware tag;
    # Canon compacts write AVI INFO ISFT "CanonMVIxx"
    handlers = " ".join(clean_text(t.get("handler_name")) or "" for t in stream_tags)
    if "make" not in out:
        if "GoPro" in handlers:
            out["make"] = "GoPro"
        elif (out.get("software") or "").startswith("CanonMVI"):
            out["make"] = "Canon"
    return out or None
