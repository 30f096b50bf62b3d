"""Synced clips as an OpenTimelineIO timeline: one track per file, each clip placed at its offset on the
reference's timeline, so editors (Resolve, Premiere, Avid through OTIO adapters) open the group in sync.
Unsynced files are left out and listed in the timeline's metadata."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from .align import SyncResult
from .decode import info


def build_timeline(results: list[SyncResult], *, name: str = "synced", rate: str | None = None) -> otio.schema.Timeline:
    """`rate`: the timeline's frame rate (default: the first video's, else 25)."""
    infos = {r.path: info(r.path) for r in results if r.status in ("reference", "synced")}
    fps = Fraction(rate) if rate else next((Fraction(i.video_fps) for i in infos.values() if i.video_fps), Fraction(25))
    fr = float(fps)
    earliest = min((r.offset_seconds or 0.0) for r in results if r.status in ("reference", "synced"))
    tl = otio.schema.Timeline(name=name)
    tl.global_start_time = otio.opentime.RationalTime(0, fr)
    tl.metadata["mediaidx"] = {"reference": results[0].reference,
                               "unsynced": [{"path": r.path, "reason": r.reason} for r in results
                                            if r.status == "unsynced"]}
    for r in results:
        if r.status not in ("reference", "synced"):
            continue
        i = infos[r.path]
        kind = otio.schema.TrackKind.Video if i.video_fps else otio.schema.TrackKind.Audio
        track = otio.schema.Track(name=os.path.basename(r.path), kind=kind)
        start = (r.offset_seconds or 0.0) - earliest
        if start > 0:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, fr), otio.opentime.RationalTime.from_seconds(start, fr))))
        ref = otio.schema.ExternalReference(target_url=Path(os.path.abspath(r.path)).as_uri())
        clip = otio.schema.Clip(
            name=os.path.basename(r.path), media_reference=ref,
            source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, fr),
                                                 otio.opentime.RationalTime.from_seconds(i.duration, fr)))
        clip.metadata["mediaidx"] = {"offset_seconds": r.offset_seconds, "drift_ppm": r.drift_ppm,
                                     "confidence": r.confidence, "status": r.status, "via": r.via}
        track.append(clip)
        tl.tracks.append(track)
    return tl


def write_timeline(results: list[SyncResult], path: Path, **kw: object) -> Path:
    otio.adapters.write_to_file(build_timeline(results, **kw), str(path))  # type: ignore[arg-type]
    return path
