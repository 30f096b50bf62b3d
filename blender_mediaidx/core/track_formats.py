"""Matchmove interchange formats, bpy-free: Nuke .chan cameras, 3DEqualizer 2D points, tracks as CSV/JSON,
lens/filmback and plate sidecars. Writers and the parsers the tests read them back with.

Conventions (docs/tracking.md says the same):
- 2D positions are pixels with the origin at the lower-left corner of the lower-left pixel, x right, y up;
  a pixel's centre is at +0.5. That is 3DEqualizer's and Tracksperanto's convention and Blender's
  `marker.co * clip.size`.
- Frames are scene frame numbers (the plate's own numbering, e.g. 1001..), never 0-based.
- .chan: one line per frame, `frame tx ty tz rx ry rz vfov`, Y up (Nuke's world), rotations in degrees applied
  in the order the file name gives (ZXY by default, Nuke's default), vfov the vertical field of view in degrees.
Why not a library: these are a few lines of text each, and the one Python reader of 3DE points (mmSolver)
needs Maya.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = ("chan", "fbx", "abc", "3de", "csv", "json")  # what an export can write, besides lens and plate

Track2D = tuple[str, Sequence[tuple[int, float, float]]]  # (name, [(frame, x_px, y_px), ...])

# Blender world (Z up) to Nuke/Maya world (Y up): a -90 degree turn about X.
Z_UP_TO_Y_UP = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


_AXES = {"X": _rx, "Y": _ry, "Z": _rz}


def euler_to_matrix(angles_deg: Sequence[float], order: str = "ZXY") -> np.ndarray:
    """Rotation from (rx, ry, rz) in degrees, applied in `order` (first letter first), as Nuke and Blender
    read rotation orders."""
    by_axis = dict(zip("XYZ", (math.radians(a) for a in angles_deg), strict=True))
    m = np.eye(3)
    for axis in order:
        m = _AXES[axis](by_axis[axis]) @ m
    return m


def matrix_to_euler(rot: np.ndarray, order: str = "ZXY") -> tuple[float, float, float]:
    """(rx, ry, rz) in degrees with euler_to_matrix(result, order) == rot. Orders ZXY and XYZ."""
    r = np.asarray(rot, dtype=float)[:3, :3]
    if order == "ZXY":  # R = Ry Rx Rz
        x = math.asin(max(-1.0, min(1.0, -r[1, 2])))
        y = math.atan2(r[0, 2], r[2, 2])
        z = math.atan2(r[1, 0], r[1, 1])
    elif order == "XYZ":  # R = Rz Ry Rx
        y = math.asin(max(-1.0, min(1.0, -r[2, 0])))
        x = math.atan2(r[2, 1], r[2, 2])
        z = math.atan2(r[1, 0], r[0, 0])
    else:
        raise ValueError(f"rotation order {order!r} is not supported (ZXY or XYZ)")
    return math.degrees(x), math.degrees(y), math.degrees(z)


def vertical_fov_deg(focal_mm: float, sensor_width_mm: float, width: int, height: int,
                     pixel_aspect: float = 1.0) -> float:
    """Vertical field of view of a horizontally fitted filmback."""
    sensor_h = sensor_width_mm * height / (width * pixel_aspect)
    return math.degrees(2 * math.atan2(sensor_h / 2, focal_mm))


@dataclass
class ChanRow:
    frame: int
    translate: tuple[float, float, float]
    rotate: tuple[float, float, float]
    vfov: float | None


def write_chan(path: Path, frames: Iterable[tuple[int, np.ndarray]], vfov: float | Sequence[float] | None,
               *, order: str = "ZXY", y_up: bool = True) -> int:
    """One line per (frame, 4x4 Blender world matrix), every frame given including the last."""
    rows = 0
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        for i, (frame, matrix) in enumerate(frames):
            m = np.asarray(matrix, dtype=float)
            if y_up:
                m = Z_UP_TO_Y_UP @ m
            rot = m[:3, :3] / np.linalg.norm(m[:3, :3], axis=0)
            rx, ry, rz = matrix_to_euler(rot, order)
            fields = [f"{frame:d}", *(f"{v:.9f}" for v in (*m[:3, 3], rx, ry, rz))]
            if vfov is not None:
                fields.append(f"{(vfov if isinstance(vfov, (int, float)) else vfov[i]):.9f}")
            fh.write("\t".join(fields) + "\n")
            rows += 1
    return rows


def read_chan(path: Path) -> list[ChanRow]:
    rows = []
    for line_no, line in enumerate(Path(path).read_text(encoding="ascii").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) not in (7, 8):
            raise ValueError(f"{path}:{line_no}: a .chan line has 7 or 8 fields, not {len(parts)}")
        v = [float(p) for p in parts[1:]]
        rows.append(ChanRow(int(float(parts[0])), (v[0], v[1], v[2]), (v[3], v[4], v[5]),
                            v[6] if len(v) == 7 else None))
    return rows


def chan_matrix(row: ChanRow, *, order: str = "ZXY", y_up: bool = True) -> np.ndarray:
    """The Blender (Z up) world matrix a .chan row stands for."""
    m = np.eye(4)
    m[:3, :3] = euler_to_matrix(row.rotate, order)
    m[:3, 3] = row.translate
    return np.linalg.inv(Z_UP_TO_Y_UP) @ m if y_up else m


def write_3de_points(path: Path, tracks: Sequence[Track2D]) -> int:
    """3DEqualizer 4 "point export" text: count, then per point its name, colour, frame count and
    `frame x y` lines (1-based frames, pixel coordinates, origin lower-left)."""
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        fh.write(f"{len(tracks)}\n")
        for name, markers in tracks:
            fh.write(f"{_ascii_name(name)}\n0\n{len(markers)}\n")
            for frame, x, y in markers:
                fh.write(f"{frame:d} {x:.15f} {y:.15f}\n")
    return len(tracks)


def read_3de_points(path: Path) -> list[Track2D]:
    lines = [ln.strip() for ln in Path(path).read_text(encoding="ascii").splitlines() if ln.strip()]
    count, pos, tracks = int(lines[0]), 1, []
    for _ in range(count):
        name, frames = lines[pos], int(lines[pos + 2])
        pos += 3
        markers = []
        for ln in lines[pos:pos + frames]:
            f, x, y = ln.split()
            markers.append((int(f), float(x), float(y)))
        pos += frames
        tracks.append((name, markers))
    return tracks


def _ascii_name(name: str) -> str:
    """3DE point names are one ASCII word per line."""
    clean = "".join(c if c.isascii() and c.isprintable() and not c.isspace() else "_" for c in name)
    return clean or "track"


def write_tracks_csv(path: Path, tracks: Sequence[Track2D], width: int, height: int) -> int:
    """One row per marker: track, frame, x_px, y_px, plus normalised u, v (0..1, origin lower-left)."""
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["track", "frame", "x_px", "y_px", "u", "v"])
        for name, markers in tracks:
            for frame, x, y in markers:
                w.writerow([name, frame, f"{x:.6f}", f"{y:.6f}", f"{x / width:.9f}", f"{y / height:.9f}"])
                rows += 1
    return rows


def tracks_document(tracks: Sequence[Track2D], width: int, height: int, errors: dict[str, float] | None = None,
                    bundles: dict[str, Sequence[float]] | None = None) -> dict:
    return {
        "convention": {"units": "pixels", "origin": "lower-left corner of the lower-left pixel",
                       "y": "up", "pixel_centre": 0.5, "frames": "scene frame numbers"},
        "width": width, "height": height,
        "tracks": [{"name": name, "markers": [[f, x, y] for f, x, y in markers],
                    **({"error_px": errors[name]} if errors and name in errors else {}),
                    **({"bundle": list(bundles[name])} if bundles and name in bundles else {})}
                   for name, markers in tracks],
    }


def parse_survey(doc: object) -> dict[str, dict[str, list[list[float]]]]:
    """A survey document checked before any solve: ``{point: {camera: [[frame, x_px, y_px], ...]}}``.
    Raises ValueError naming the first bad entry (a wrong shape would otherwise fail deep inside Blender)."""
    if not isinstance(doc, dict):
        raise ValueError("a survey is a JSON object {point: {camera: [[frame, x, y], ...]}}")
    out: dict[str, dict[str, list[list[float]]]] = {}
    for point, per_camera in doc.items():
        if not isinstance(per_camera, dict):
            raise ValueError(f"survey point {point!r}: expected {{camera: [[frame, x, y], ...]}}")
        out[point] = {}
        for camera, markers in per_camera.items():
            if not isinstance(markers, list) or not markers:
                raise ValueError(f"survey point {point!r}, camera {camera!r}: expected a list of [frame, x, y]")
            rows = []
            for m in markers:
                if (not isinstance(m, list) or len(m) != 3
                        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                   for v in m)):
                    raise ValueError(f"survey point {point!r}, camera {camera!r}: {m!r} is not [frame, x, y]")
                if m[0] != int(m[0]) or m[0] < 1:
                    raise ValueError(f"survey point {point!r}, camera {camera!r}: frame {m[0]!r} is not a "
                                     "whole number from 1")
                rows.append([int(m[0]), float(m[1]), float(m[2])])
            out[point][camera] = rows
    return out


def load_survey(path: Path) -> dict[str, dict[str, list[list[float]]]]:
    """Read and check a survey JSON file; ValueError with a one-line reason for any problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    try:
        return parse_survey(doc)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def write_json(path: Path, doc: dict) -> None:
    Path(path).write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
