"""Where synced clips go on a scene's timeline (bpy-free): the earliest clip at the scene's start frame, each
other clip shifted by its offset, in exact frames of the scene's rate, one channel pair per file."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any


@dataclass
class Placement:
    path: str
    frame_start: int
    channel: int
    offset_seconds: float
    subframe_error_s: float   # what rounding to a whole frame moved the clip by


def place(results: list[dict[str, Any]], fps: Fraction, start_frame: int = 1) -> tuple[list[Placement], list[dict]]:
    """(placements of synced files, unsynced files). `results` are `mediaidx sync --json` results."""
    synced = [r for r in results if r.get("status") in ("reference", "synced")]
    unsynced = [r for r in results if r.get("status") not in ("reference", "synced")]
    if not synced:
        return [], unsynced
    earliest = min(float(r.get("offset_seconds") or 0.0) for r in synced)
    out = []
    for i, r in enumerate(synced):
        t = float(r.get("offset_seconds") or 0.0) - earliest
        exact = Fraction(t).limit_denominator(10 ** 6) * fps
        frame = round(exact)
        out.append(Placement(r["path"], start_frame + frame, 1 + 2 * i, float(r.get("offset_seconds") or 0.0),
                             float((frame - exact) / fps)))
    return out, unsynced
