"""Containers and streams with PyAV, in-process: what ffprobe -show_format -show_streams reports,
plus rotation, HDR, timecode, capture date, camera, GPS, an audio silence check and truncation
warnings. One open per file and no subprocess, so a scan of 100,000 clips stays fast.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from typing import Any

import av

from ..errors import ProbeError
from . import isobmff
from .audio_level import measure
from .names import (
    COLOR_PRIMARIES,
    COLOR_RANGE,
    COLOR_SPACE,
    COLOR_TRANSFER,
    FIELD_ORDER,
    HDR_TRANSFER,
    INTERLACED,
    container_short,
)
from .source import QT_TOP_BOXES, Source
from .tags import camera_from_tags, container_date_candidates, created_from, gps_from_tags
from .timecode import find_timecode

MAX_TAG_CHARS = 4096  # XMP or cover-art-as-text tags would bloat the catalog
VFR_TOLERANCE = 0.01  # avg and r frame rates this far apart (relative) mean variable frame rate

# libavformat options for ISO BMFF (MP4/MOV). By default find_stream_info keeps reading (and decoding)
# packets until it has seen 20 frames per video stream to estimate r_frame_rate; in MP4/MOV the sample
# tables already time every frame, and the rates come out identical without it, while a VFR phone clip
# stops costing ~240 extra packets (FLIR clip: 45 ms -> 9 ms). tests/test_probe.py checks that the
# probe of every corpus MP4/MOV is unchanged. A smaller probesize would be faster still but loses
# facts (the AAC profile of non-interleaved files, some stream durations), so it is left alone.
BMFF_OPTIONS = {"fpsprobesize": "0"}


class _Named:
    """A file object with the name PyAV passes to libavformat (its extension helps format probing)."""

    def __init__(self, fh: Any, name: str) -> None:
        self._fh = fh
        self.name = name
        self.read = fh.read
        self.seek = fh.seek
        self.tell = fh.tell


def _ratio(v: Fraction | None) -> str | None:
    if v is None or not v.denominator or v.numerator <= 0:
        return None
    return f"{v.numerator}/{v.denominator}"


def _seconds(ts: int | None, tb: Fraction | None) -> float | None:
    if ts is None or tb is None:
        return None
    return round(float(ts * tb), 6)


def _tags(d: dict[str, str] | None) -> dict[str, str]:
    out = {}
    for k, v in (d or {}).items():
        v = str(v)
        out[str(k)] = v if len(v) <= MAX_TAG_CHARS else v[:MAX_TAG_CHARS] + "…"
    return out


def _open_target(src: Source) -> Any:
    """A path for libavformat's own file I/O (fastest), else the file object."""
    if src.path is not None:
        path = os.fsdecode(src.path)  # PyAV fsencodes it back, so odd bytes survive the round trip
        return "file:" + path  # 'file:' stops a name like 'a:b.mp4' being read as a protocol
    return _Named(src.fh, src.name)


def open_container(src: Source) -> Any:
    """av.open() with FFmpeg errors turned into ProbeError (missing/unreadable files stay OSErrors)."""
    opts = BMFF_OPTIONS if src.head[4:8] in QT_TOP_BOXES else {}
    if src.path is None:
        src.rewind()
    try:
        return av.open(_open_target(src), "r", container_options=opts, metadata_errors="replace")
    except av.error.FileNotFoundError as exc:
        raise FileNotFoundError(exc.errno, exc.strerror, src.name) from None
    except av.error.PermissionError as exc:
        raise PermissionError(exc.errno, exc.strerror, src.name) from None
    except av.error.FFmpegError as exc:
        raise ProbeError(_open_failure(src, exc)) from None


def _open_failure(src: Source, exc: Exception) -> str:
    """A one-line reason for a file libavformat would not open."""
    if src.head[4:8] in QT_TOP_BOXES:
        layout = isobmff.walk(src.read_at, src.size, tracks=False, max_boxes=isobmff.box_limit(src.path is None))
        if layout.overrun is not None:
            kind = layout.overrun.type.decode("latin-1")
            if kind == "moov":
                return ("looks truncated: the 'moov' index box runs past the end of the file "
                        "(cut short or still being written?)")
            if layout.find(b"moov") is None:
                return (f"looks truncated: the '{kind}' box runs past the end of the file and there is no "
                        "'moov' index (cut short or still being written?)")
        if layout.find(b"moov") is None:
            return "looks truncated or incomplete: no 'moov' index box in this QuickTime/MP4 file"
        return f"corrupt QuickTime/MP4 file ({_reason(exc)})"
    if isinstance(exc, av.error.EOFError):
        return "looks truncated (unexpected end of file)"
    if isinstance(exc, av.error.InvalidDataError):
        return "not a recognised media file (unknown format or corrupt data)"
    return f"cannot open as media ({_reason(exc)})"


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).splitlines()[0]


# -- streams --------------------------------------------------------------------------------------------

def _codec_names(s: Any) -> tuple[str | None, str | None]:
    cc = s.codec_context
    if cc is not None:
        return cc.codec.canonical_name, cc.codec.long_name
    try:
        return s.name, None  # DataStream: the codec descriptor name, like ffprobe's codec_name
    except AttributeError:
        return None, None


def _codec_tag(cc: Any) -> str | None:
    """The fourcc ('avc1', 'MJPG'), when it is printable text (PyAV decodes it as ASCII)."""
    if cc is None:
        return None
    try:
        tag = cc.codec_tag
    except (UnicodeDecodeError, ValueError):
        return None
    return tag if tag and tag.isprintable() and tag.strip("\x00 ") else None


def _bit_depth(pix_fmt: str | None) -> int | None:
    if not pix_fmt:
        return None
    try:
        comps = av.VideoFormat(pix_fmt).components
    except (ValueError, av.error.FFmpegError):
        return None
    return max((c.bits for c in comps), default=None) or None


def _is_vfr(avg: Fraction | None, r: Fraction | None, field_order: str | None) -> bool | None:
    if not avg or not r:
        return None
    ratio = float(r / avg)
    if abs(ratio - 1) <= VFR_TOLERANCE:
        return False
    # r_frame_rate counts fields of interlaced video (50i: r=50, avg=25): that is not VFR
    return not (field_order in INTERLACED and abs(ratio - 2) <= 2 * VFR_TOLERANCE)


def _video(s: Any, d: dict[str, Any], track: isobmff.Track | None) -> None:
    cc = s.codec_context
    if cc is not None:
        if cc.width and cc.height:
            d["width"], d["height"] = cc.width, cc.height
        if cc.pix_fmt:
            d["pix_fmt"] = cc.pix_fmt
            depth = _bit_depth(cc.pix_fmt)
            if depth:
                d["bit_depth"] = depth
    guessed, avg, r = s.guessed_rate, s.average_rate, s.base_rate
    for key, v in (("frame_rate", guessed), ("avg_frame_rate", avg), ("r_frame_rate", r)):
        if _ratio(v):
            d[key] = _ratio(v)
    field_order = FIELD_ORDER.get(cc.field_order) if cc is not None else None
    vfr = _is_vfr(avg, r, field_order)
    if vfr is not None:
        d["vfr"] = vfr
    rotation = 0
    if track is not None and track.matrix is not None:
        rot = isobmff.rotation(track.matrix)
        if rot is not None:
            rotation, mirrored = rot
            d["rotation"] = rotation
            if mirrored:
                d["mirrored"] = True
    sar = s.sample_aspect_ratio if cc is not None and cc.width else None
    if _ratio(sar):
        d["sample_aspect_ratio"] = f"{sar.numerator}/{sar.denominator}"
    if "width" in d:
        w, h = d["width"], d["height"]
        if sar and sar != 1:
            w = round(w * sar)  # square pixels on screen
        if rotation in (90, -90, 270, -270):
            w, h = h, w
        d["display_width"], d["display_height"] = w, h
    if field_order:
        d["field_order"] = field_order
    if cc is not None:
        for key, table, value in (("color_primaries", COLOR_PRIMARIES, cc.color_primaries),
                                  ("color_transfer", COLOR_TRANSFER, cc.color_trc),
                                  ("color_space", COLOR_SPACE, cc.colorspace),
                                  ("color_range", COLOR_RANGE, cc.color_range)):
            if value in table:
                d[key] = table[value]
        hdr = HDR_TRANSFER.get(d.get("color_transfer", ""))
        if hdr:
            d["hdr"] = hdr


def _audio(s: Any, d: dict[str, Any]) -> None:
    cc = s.codec_context
    if cc is None:
        return
    if cc.sample_rate:
        d["sample_rate"] = cc.sample_rate
    if cc.channels:
        d["channels"] = cc.channels
    layout = cc.layout.name if cc.layout is not None else None
    if layout and not re.fullmatch(r"\d+ channels?", layout):  # 'N channels' = order unknown
        d["channel_layout"] = layout
    if cc.format is not None:
        d["sample_fmt"] = cc.format.name


_DISPOSITIONS = ("default", "forced", "attached_pic", "still_image", "hearing_impaired", "visual_impaired",
                 "comment", "dub", "original", "timed_thumbnails", "captions", "descriptions", "metadata")


def _stream(s: Any, track: isobmff.Track | None) -> dict[str, Any]:
    d: dict[str, Any] = {"index": s.index, "type": s.type}
    codec, codec_long = _codec_names(s)
    if codec:
        d["codec"] = codec
    if codec_long:
        d["codec_long"] = codec_long
    cc = s.codec_context
    tag = _codec_tag(cc)
    if tag:
        d["codec_tag"] = tag
    elif track is not None and track.sample_entry:
        d["codec_tag"] = track.sample_entry
    if track is not None and track.handler:
        d["handler"] = track.handler
    profile = s.profile if cc is not None else None
    if profile:
        d["profile"] = profile
    if cc is not None and cc.bit_rate:
        d["bit_rate"] = cc.bit_rate
    tb = s.time_base
    if _ratio(tb):
        d["time_base"] = _ratio(tb)
    start = _seconds(s.start_time, tb)
    if start is not None:
        d["start_time"] = start
    if s.duration:
        d["duration"] = _seconds(s.duration, tb)
    if s.frames and s.frames > 0:
        d["frame_count"] = s.frames  # nb_frames from the container header; never counted by decoding
    lang = s.language
    if lang and lang.lower() not in ("und", "unk", "xxx"):
        d["language"] = lang
    disp = [n for n in _DISPOSITIONS if s.disposition & getattr(av.stream.Disposition, n)]
    if disp:
        d["disposition"] = disp
    if s.type == "video":
        _video(s, d, track)
    elif s.type == "audio":
        _audio(s, d)
    tags = _tags(s.metadata)
    if tags:
        d["tags"] = tags
    return d


def _primary_video(streams: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The picture stream: not cover art; one with a known size (a decoder) before one without."""
    cands = [d for d in streams if d["type"] == "video" and "attached_pic" not in d.get("disposition", ())]
    cands.sort(key=lambda d: ("width" not in d, "default" not in d.get("disposition", ())))
    return cands[0] if cands else None


def _primary_audio(streams: list[dict[str, Any]]) -> dict[str, Any] | None:
    cands = [d for d in streams if d["type"] == "audio"]
    return next((d for d in cands if "default" in d.get("disposition", ())), cands[0] if cands else None)


# -- the probe ------------------------------------------------------------------------------------------

def probe_av(src: Source, container: Any) -> dict[str, Any]:
    """The probe of an opened container; the caller closes it."""
    warnings: list[str] = []
    fmt_name = container.format.name
    fmt_tags = _tags(container.metadata)
    is_bmff = fmt_name.startswith("mov,")
    limit = isobmff.box_limit(src.path is None)
    layout = isobmff.walk(src.read_at, src.size, max_boxes=limit) if is_bmff else None
    tracks = {t.track_id: t for t in layout.tracks} if layout else {}

    streams = [_stream(s, tracks.get(s.id)) for s in container.streams]
    video = _primary_video(streams)
    audio = _primary_audio(streams)
    if video is not None:
        kind = "image" if (fmt_name.endswith("_pipe") or fmt_name == "image2") else "video"
    elif audio is not None:
        kind = "audio"
    else:
        types = ", ".join(sorted({d["type"] for d in streams})) or "none"
        raise ProbeError(f"no audio or video streams to read (streams: {types})")

    fmt: dict[str, Any] = {
        "name": fmt_name,
        "long_name": container.format.long_name,
        "container": container_short(fmt_name, fmt_tags.get("major_brand"), src.ext),
    }
    if container.duration and container.duration > 0:
        fmt["duration"] = round(container.duration / 1_000_000, 6)
    if container.bit_rate:
        fmt["bit_rate"] = container.bit_rate
    if container.start_time is not None:
        fmt["start_time"] = round(container.start_time / 1_000_000, 6)
    fmt["nb_streams"] = len(streams)
    if fmt_tags:
        fmt["tags"] = fmt_tags

    probe: dict[str, Any] = {
        "kind": kind,
        "size": src.size,
        "format": fmt,
        "streams": streams,
        "has_audio": audio is not None,
        "warnings": warnings,
    }

    stream_tags = [d.get("tags", {}) for d in streams]
    tc = find_timecode(fmt_tags, [(d["index"], d["type"], d.get("tags", {}), d.get("codec_tag"))
                                  for d in streams])
    if tc:
        probe["timecode"], probe["timecode_source"] = tc
    # the primary video/audio streams' tags are the relevant ones for dates and cameras
    ordered = [d.get("tags", {}) for d in (video, audio) if d] + stream_tags
    created = created_from(container_date_candidates(fmt_tags, ordered))
    if created:
        probe["created"] = created
    camera = camera_from_tags(fmt_tags, ordered)
    if camera:
        probe["camera"] = camera
    gps = gps_from_tags(fmt_tags, stream_tags)
    if gps:
        probe["gps"] = gps

    bwf = _bwf(fmt_tags, audio)
    if bwf:
        probe["bwf"] = bwf

    if video is not None and "width" not in video:
        warnings.append(f"no decoder for the video codec ({video.get('codec') or 'unknown'}): size unknown")
    warnings.extend(_integrity(src, container, fmt_name, layout, video))

    if audio is not None:
        s = container.streams[audio["index"]]
        if s.codec_context is None:
            warnings.append(f"no decoder for the audio codec ({audio.get('codec') or 'unknown'}): silence not checked")
        else:
            dur = audio.get("duration") or fmt.get("duration")
            level = measure(container, s, dur)
            probe["audio"] = level
            if "error" in level:
                warnings.append(f"audio check: {level['error']}")
    return probe


def _bwf(fmt_tags: dict[str, str], audio: dict[str, Any] | None) -> dict[str, Any] | None:
    """BWF bext facts for syncing: TimeReference is the start in samples since midnight."""
    ref = fmt_tags.get("time_reference")
    if ref is None or not ref.strip().isdigit():
        return None
    out: dict[str, Any] = {"time_reference": int(ref)}
    rate = (audio or {}).get("sample_rate")
    if rate:
        seconds = int(ref) / rate
        out["time_reference_seconds"] = round(seconds, 6)
        h, rem = divmod(seconds, 3600)
        m, sec = divmod(rem, 60)
        out["start_clock"] = f"{int(h):02d}:{int(m):02d}:{sec:06.3f}"
    for key, name in (("comment", "description"), ("encoded_by", "originator"),
                      ("originator_reference", "originator_reference"), ("umid", "umid"),
                      ("coding_history", "coding_history")):
        if fmt_tags.get(key):
            out[name] = fmt_tags[key]
    return out


def _integrity(src: Source, container: Any, fmt_name: str, layout: isobmff.Layout | None,
               video: dict[str, Any] | None) -> list[str]:
    """Cheap signs of a cut-short file, from sizes the container declares against the real size."""
    out: list[str] = []
    size = src.size
    if layout is not None and layout.overrun is not None:
        box = layout.overrun
        out.append(f"file looks truncated: box '{box.type.decode('latin-1')}' declares {box.size} bytes "
                   f"but only {size - box.offset} remain (duration and frame count may be wrong)")
    else:
        # the container's own index (MP4 sample tables, Matroska cues, AVI idx1) pointing past the end
        for s in container.streams:
            entries = s.index_entries
            if len(entries):
                last = entries[len(entries) - 1]
                if last.pos > 0 and last.pos + last.size > size:
                    out.append(f"file looks truncated: stream {s.index} data ends at byte {last.pos + last.size} "
                               f"but the file has {size} (duration and frame count may be wrong)")
                    break
    head = src.head
    if head[:4] == b"RIFF" and fmt_name in ("avi", "wav"):
        declared = int.from_bytes(head[4:8], "little") + 8
        if declared > size:
            out.append(f"file looks truncated: RIFF header says {declared} bytes, file has {size} "
                       "(duration and frame count may be wrong)")
    elif head[:4] == b"\x1aE\xdf\xa3":
        seg = _mkv_segment_end(head)
        if seg is not None and seg > size:
            out.append(f"file looks truncated: Matroska segment says {seg} bytes, file has {size}")
    elif fmt_name == "mpegts" and size % 188 and size % 192:
        out.append("file size is not a whole number of transport packets (truncated?)")
    if video is not None and not out:
        frames, dur, avg = video.get("frame_count"), video.get("duration"), video.get("avg_frame_rate")
        if frames and dur and avg:
            expected = dur * float(Fraction(avg))
            if abs(frames - expected) > max(2, 0.1 * frames):
                out.append(f"header frame count ({frames}) does not match the duration ({dur:.3f} s at "
                           f"{float(Fraction(avg)):.3f} fps): the file may be truncated or damaged")
    if not container.duration and not fmt_name.endswith("_pipe") and fmt_name != "image2":
        out.append("duration unknown")
    return out


def _mkv_segment_end(head: bytes) -> int | None:
    """End offset of the first Matroska Segment from the EBML header, None when unknown-sized."""
    def vint(pos: int, keep_marker: bool) -> tuple[int, int] | None:
        if pos >= len(head):
            return None
        first = head[pos]
        length = next((i + 1 for i in range(8) if first & (0x80 >> i)), 0)
        if not length or pos + length > len(head):
            return None
        value = first if keep_marker else first & (0xFF >> length)
        for b in head[pos + 1: pos + length]:
            value = (value << 8) | b
        if not keep_marker and value == (1 << (7 * length)) - 1:
            return -1, pos + length  # unknown size
        return value, pos + length

    pos = 0
    for _ in range(4):  # EBML header, then (maybe Void elements) the Segment
        ident = vint(pos, True)
        size = vint(ident[1], False) if ident else None
        if not ident or not size:
            return None
        if ident[0] == 0x18538067:
            return None if size[0] < 0 else size[1] + size[0]
        if size[0] < 0:
            return None
        pos = size[1] + size[0]
    return None
