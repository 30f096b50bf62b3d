"""Validating shots pushed by the bridge (event "shots") before anything is imported. No bpy."""

from __future__ import annotations

from typing import Any

MODES = ("clip", "camera-bg", "strip", "plane")


def parse_shots(data: Any) -> list[dict[str, Any]]:
    """[{mode, asset}] from an event's data; ValueError naming what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("shots"), list):
        raise ValueError("a push carries {'shots': [...]}")
    out = []
    for i, shot in enumerate(data["shots"]):
        if not isinstance(shot, dict):
            raise ValueError(f"shot {i} is not a map")
        mode = shot.get("mode", "clip")
        if mode not in MODES:
            raise ValueError(f"shot {i}: unknown mode {mode!r}")
        asset = shot.get("asset")
        if not isinstance(asset, dict) or not isinstance(asset.get("id"), int) or not isinstance(asset.get("path"), str):
            raise ValueError(f"shot {i}: the asset needs an id and a path")
        out.append({"mode": mode, "asset": asset})
    return out
