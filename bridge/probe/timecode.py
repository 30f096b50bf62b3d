"""Start timecode from container metadata, for conforming and syncing in an editor.

libavformat turns a QuickTime ``tmcd`` track, an MXF material package timecode, a Matroska TIMECODE
tag and a GOP timecode into a ``timecode`` tag; which one carried it is kept as the source.
Reading SMPTE 12M side data would need a decoded frame, which is not cheap, so it is not done here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_TC = re.compile(r"^\s*(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})\s*$")


def normalise(text: str | None) -> str | None:
    """'1:02:03;04' -> '01:02:03;04'; None when not a timecode. ';' or ',' marks drop-frame."""
    if not text or not isinstance(text, str):
        return None
    m = _TC.match(text)
    if not m:
        return None
    hh, mm, ss, sep, ff = m.groups()
    if int(mm) > 59 or int(ss) > 59:
        return None
    sep = ";" if sep in ";," else ":"
    return f"{int(hh):02d}:{mm}:{ss}{sep}{ff}"


def _tag(tags: Mapping[str, str]) -> str | None:
    for key, value in tags.items():
        if key.lower() == "timecode":
            return normalise(value)
    return None


def find_timecode(format_tags: Mapping[str, str],
                  streams: Sequence[tuple[int, str, Mapping[str, str], str | None]]) -> tuple[str, str] | None:
    """(timecode, source) from (index, type, tags, sample_entry) streams and the container tags.

    A timecode (data) track wins over a copy on the video stream, which wins over a container tag.
    """
    for index, kind, tags, entry in streams:
        if kind == "data" and (tc := _tag(tags)):
            return tc, f"{entry or 'timecode'} track (stream {index})"
    for index, kind, tags, _entry in streams:
        if kind == "video" and (tc := _tag(tags)):
            return tc, f"video stream tag (stream {index})"
    if tc := _tag(format_tags):
        return tc, "container tag"
    for index, _kind, tags, _entry in streams:
        if tc := _tag(tags):
            return tc, f"stream tag (stream {index})"
    return None
