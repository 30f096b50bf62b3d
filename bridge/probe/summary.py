"""summarize(): the few probe facts the catalog keeps in columns for filtering and sorting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUMMARY_KEYS = (
    "kind", "container", "video_codec", "audio_codec", "width", "height", "duration", "fps_num", "fps_den",
    "has_audio", "audio_silent", "captured_at", "captured_utc", "camera_make", "camera_model",
)


def _primary(streams: list[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    """The stream probe_file() treats as the picture / the sound (same rule as bridge.probe.avprobe)."""
    if kind == "video":
        cands = [s for s in streams if s.get("type") == "video" and "attached_pic" not in s.get("disposition", ())]
        cands.sort(key=lambda s: (not s.get("width"), "default" not in s.get("disposition", ())))
        return cands[0] if cands else None
    cands = [s for s in streams if s.get("type") == kind]
    return next((s for s in cands if "default" in s.get("disposition", ())), cands[0] if cands else None)


def summarize(probe: Mapping[str, Any]) -> dict[str, Any]:
    """Exactly SUMMARY_KEYS from a probe_file() result; None where the probe does not know."""
    out: dict[str, Any] = dict.fromkeys(SUMMARY_KEYS)
    kind = probe.get("kind")
    out["kind"] = kind
    fmt = probe.get("format") or {}
    out["container"] = fmt.get("container")
    streams = probe.get("streams") or []
    video = _primary(streams, "video")
    audio = _primary(streams, "audio")
    if kind == "image":
        image = probe.get("image") or {}
        out["width"] = image.get("width") or (video or {}).get("width")
        out["height"] = image.get("height") or (video or {}).get("height")
    else:
        if video is not None:
            out["video_codec"] = video.get("codec")
            out["width"], out["height"] = video.get("width"), video.get("height")
            rate = video.get("frame_rate")
            if rate:
                num, _, den = str(rate).partition("/")
                out["fps_num"], out["fps_den"] = int(num), int(den or 1)
        if audio is not None:
            out["audio_codec"] = audio.get("codec")
        duration = fmt.get("duration")
        if duration is None:
            durations = [s["duration"] for s in streams if s.get("duration")]
            duration = max(durations) if durations else None
        out["duration"] = float(duration) if duration is not None else None
        out["has_audio"] = bool(probe.get("has_audio", audio is not None))
        level = probe.get("audio") or {}
        silent = level.get("silent")
        out["audio_silent"] = bool(silent) if silent is not None else None
    created = probe.get("created") or {}
    out["captured_at"] = created.get("value")
    out["captured_utc"] = created.get("utc")
    camera = probe.get("camera") or {}
    out["camera_make"] = camera.get("make")
    out["camera_model"] = camera.get("model")
    return out
