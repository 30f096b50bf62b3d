"""Tracking plates with a known camera: random 3D points projected with numpy, one PNG per frame.

The truth every tracking test and benchmark measures against: per frame the camera's world matrix (Blender
convention: Z up world, camera looking down its local -Z with local +Y up), the focal length in pixels and
the principal point. Pixel convention: pixel (i, j) covers [i, i+1) x [j, j+1), so its centre is at
(i + 0.5, j + 0.5); y counts up from the bottom edge, as in Blender's clip editor.

Anamorphic plates (``pixel_aspect`` != 1) follow Blender's tracking camera: a stored pixel is shown
``pixel_aspect`` times as wide as it is tall, ``focal_px`` is the horizontal focal length in stored pixels and the
vertical one is ``focal_px * pixel_aspect`` (libmv solves in rows scaled by 1 / pixel_aspect). They are written as
a lossless movie whose container carries the sample aspect ratio, as a camera or a transcode would.

Why not Cycles: a numpy splat renderer makes a 48-frame 640x360 plate in about a second, renders the exact
pinhole projection (no anti-aliasing or filter to model) and needs no Blender, so the truth is exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class CameraTruth:
    """One camera's ground truth: per-frame world matrices and the intrinsics."""

    name: str
    width: int
    height: int
    focal_px: float
    sensor_width_mm: float
    first_frame: int
    matrices: list[list[list[float]]] = field(default_factory=list)  # per frame 4x4, row-major
    pattern: str = ""  # the first frame's path (the movie's, for a movie plate)
    pixel_aspect: float = 1.0  # width / height of a stored pixel on screen (the sample aspect ratio)

    @property
    def focal_mm(self) -> float:
        return self.focal_px * self.sensor_width_mm / self.width

    @property
    def focal_y_px(self) -> float:
        """The vertical focal length in stored pixels (Blender's convention: focal_px x pixel_aspect)."""
        return self.focal_px * self.pixel_aspect

    @property
    def principal_px(self) -> tuple[float, float]:
        return self.width / 2.0, self.height / 2.0

    def centres(self) -> np.ndarray:
        return np.array([np.asarray(m)[:3, 3] for m in self.matrices])

    def project(self, points: np.ndarray, frame_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel positions (x right, y up from the bottom) and depths of world points at one frame."""
        m = np.asarray(self.matrices[frame_index])
        rot, centre = m[:3, :3], m[:3, 3]
        cam = (points - centre) @ rot  # R^T (X - C), one point per row
        depth = -cam[:, 2]
        cx, cy = self.principal_px
        with np.errstate(divide="ignore", invalid="ignore"):
            x = cx + self.focal_px * cam[:, 0] / depth
            y = cy + self.focal_y_px * cam[:, 1] / depth
        return np.stack([x, y], axis=1), depth

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> CameraTruth:
        return cls(**json.loads(path.read_text()))


def look_at(eye: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """A Blender camera world matrix at `eye` looking at `target`, world Z up."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    z_axis = -forward
    x_axis = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(z_axis, x_axis)
    if roll_deg:
        r = math.radians(roll_deg)
        x_axis, y_axis = (math.cos(r) * x_axis + math.sin(r) * y_axis,
                          -math.sin(r) * x_axis + math.cos(r) * y_axis)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x_axis, y_axis, z_axis, eye
    return m


def scene_points(count: int = 5000, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Textured surfaces of a room (floor, walls, three boxes) as dense points: (xyz, size, grey). Points lie
    on planes, as texture does in real footage, so a tracker's pattern moves as one piece."""
    rng = np.random.default_rng(seed)
    u = lambda lo, hi, n: rng.uniform(lo, hi, n)  # noqa: E731
    parts, n = [], count // 8
    parts.append(np.column_stack([u(-7, 7, 2 * n), u(1, 16, 2 * n), np.full(2 * n, -1.6)]))     # floor
    parts.append(np.column_stack([u(-7, 7, 2 * n), np.full(2 * n, 16.0), u(-1.6, 4, 2 * n)]))   # back wall
    parts.append(np.column_stack([np.full(n, -7.0), u(1, 16, n), u(-1.6, 4, n)]))             # left wall
    parts.append(np.column_stack([np.full(n, 7.0), u(1, 16, n), u(-1.6, 4, n)]))              # right wall
    for cx, cy, half in ((-2.5, 7.0, 0.9), (1.5, 9.5, 1.2), (3.8, 5.5, 0.6)):                  # boxes
        m = n // 3
        face = rng.integers(0, 3, m)
        a, b = u(-half, half, m), u(-half, half, m)
        pts = np.column_stack([cx + a, cy - half + 0 * b, -1.6 + half + b])                     # front faces
        pts[face == 1] = np.column_stack([cx + a, cy + b, np.full(m, -1.6 + 2 * half)])[face == 1]  # tops
        side = np.column_stack([cx - half * np.sign(cx) + 0 * a, cy + a, -1.6 + half + b])      # inner sides
        pts[face == 2] = side[face == 2]
        parts.append(pts)
    xyz = np.concatenate(parts)
    size = rng.uniform(0.02, 0.05, len(xyz))  # world radius in metres
    grey = rng.choice([0.08, 0.2, 0.8, 0.95], len(xyz)) + rng.uniform(-0.05, 0.05, len(xyz))
    return xyz, size, grey


def render_frame(truth: CameraTruth, index: int, xyz: np.ndarray, size: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Gaussian splats, far to near, on a mid-grey background; 8-bit greyscale, row 0 at the top."""
    w, h = truth.width, truth.height
    img = np.full((h, w), 0.5, dtype=np.float32)
    pix, depth = truth.project(xyz, index)
    radius = truth.focal_px * size / np.where(depth > 0, depth, np.inf)
    squeeze = truth.pixel_aspect  # a splat is round on screen: pixel_aspect times taller than wide, stored
    order = np.argsort(-depth)
    for i in order:
        if depth[i] <= 0.2:
            continue
        x, y, r = pix[i, 0], pix[i, 1], max(radius[i], 0.8)
        ry = max(radius[i] * squeeze, 0.8)
        reach = math.ceil(3 * r)
        reach_y = math.ceil(3 * ry) if squeeze != 1 else reach
        col0, col1 = math.floor(x) - reach, math.floor(x) + reach + 1
        row_c = h - y  # distance from the top edge
        row0, row1 = math.floor(row_c) - reach_y, math.floor(row_c) + reach_y + 1
        if col1 < 0 or row1 < 0 or col0 >= w or row0 >= h:
            continue
        c0, c1, r0, r1 = max(col0, 0), min(col1, w), max(row0, 0), min(row1, h)
        cols = np.arange(c0, c1) + 0.5
        rows = np.arange(r0, r1) + 0.5
        if squeeze != 1:  # rows in units of the column width, so the one radius applies
            d2 = (cols[None, :] - x) ** 2 + ((rows[:, None] - row_c) * (r / ry)) ** 2
        else:
            d2 = (cols[None, :] - x) ** 2 + (rows[:, None] - row_c) ** 2
        alpha = np.exp(-d2 / (2 * (r / 1.6) ** 2)) * 0.95
        patch = img[r0:r1, c0:c1]
        img[r0:r1, c0:c1] = patch * (1 - alpha) + grey[i] * alpha
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def camera_path(kind: str, frames: int) -> list[np.ndarray]:
    """Named camera moves over the point cloud. 'hero': a dolly-and-pan; 'witness': a second view from the
    side; 'slow-start': almost static for 30 frames, then a move (Blender's default keyframes 1 and 30 see
    no parallax)."""
    mats = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        if kind == "hero":
            eye = np.array([-1.6 + 3.2 * t, -2.0 + 0.8 * t, 0.3 + 0.3 * math.sin(math.pi * t)])
            target = np.array([0.6 * math.sin(1.5 * t), 10.0, 0.0])
            mats.append(look_at(eye, target, roll_deg=2.0 * t))
        elif kind == "witness":
            eye = np.array([6.0 - 1.0 * t, 1.0 + 2.5 * t, 0.8 + 0.4 * math.sin(math.pi * t)])
            target = np.array([-1.0, 10.0, -0.2 + 0.4 * t])
            mats.append(look_at(eye, target, roll_deg=-1.0))
        elif kind == "slow-start":
            s = 0.02 * t if i < 30 else 0.02 + (i - 30) / max(frames - 31, 1) * 3.0
            eye = np.array([-1.5 + s, -2.0 + 0.3 * s, 0.3 + 0.25 * math.sin(s)])
            mats.append(look_at(eye, np.array([-1.5 + s * 0.6, 10.0, 0.0])))
        else:
            raise ValueError(f"unknown camera path {kind!r}")
    return mats


def make_plate(folder: Path, kind: str = "hero", frames: int = 48, width: int = 640, height: int = 360,
               focal_px: float = 520.0, sensor_width_mm: float = 36.0, first_frame: int = 1,
               seed: int = 7, name: str | None = None, pixel_aspect: Fraction | float = 1,
               write_aspect: bool = True) -> CameraTruth:
    """Write `name.####.png` frames and `name.truth.json` into `folder`; returns the truth. With a
    ``pixel_aspect`` other than 1 (an exact ratio, e.g. Fraction(4, 3)), `width` x `height` are the stored
    pixels, `focal_px` is horizontal in them, and the plate is one lossless movie, `name.mov` (PNG), whose
    sample aspect ratio is ``pixel_aspect``; its first frame is 1. ``write_aspect=False`` leaves the sample
    aspect ratio out of the movie (a transcode that lost it: only `--pixel-aspect` can tell the squeeze)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = name or kind
    sar = Fraction(pixel_aspect).limit_denominator(65535)
    if sar <= 0:
        raise ValueError(f"pixel aspect {pixel_aspect} is not > 0")
    truth = CameraTruth(name=name, width=width, height=height, focal_px=focal_px,
                        sensor_width_mm=sensor_width_mm, first_frame=first_frame if sar == 1 else 1,
                        matrices=[m.tolist() for m in camera_path(kind, frames)], pixel_aspect=float(sar))
    xyz, size, grey = scene_points(seed=seed)
    images = (render_frame(truth, i, xyz, size, grey) for i in range(frames))
    if sar == 1:
        for i, frame in enumerate(images):
            Image.fromarray(frame, mode="L").convert("RGB").save(folder / f"{name}.{first_frame + i:04d}.png")
        truth.pattern = str(folder / f"{name}.{first_frame:04d}.png")
    else:
        truth.pattern = str(write_movie(folder / f"{name}.mov", images, sar if write_aspect else None))
    truth.save(folder / f"{name}.truth.json")
    return truth


def write_movie(path: Path, images: Iterable[np.ndarray], sample_aspect: Fraction | None, rate: int = 24) -> Path:
    """8-bit grey frames as a lossless PNG-in-QuickTime movie whose `pasp` atom carries the sample aspect ratio,
    where ffmpeg and so Blender and the bridge's probe read it (FFV1 in Matroska loses it through PyAV); None
    writes no sample aspect ratio at all (neither `pasp` nor the PNG frames' pHYs)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("png", rate=rate)
        stream.pix_fmt = "rgb24"
        for i, image in enumerate(images):
            if i == 0:
                stream.height, stream.width = image.shape
                if sample_aspect is not None:
                    stream.codec_context.sample_aspect_ratio = sample_aspect
            rgb = np.repeat(image[:, :, None], 3, axis=2)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def camera_similarity(solved: np.ndarray, truth: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The similarity (s, R, t) that best maps solved camera matrices (N x 4 x 4) onto the true ones. A point
    ahead of each camera joins its centre in the fit, so a nearly straight path (whose centres alone leave
    the roll about the line free) still pins the rotation."""
    from blender_mediaidx.core.similarity import similarity_transform

    solved, truth = np.asarray(solved, dtype=float), np.asarray(truth, dtype=float)
    sc, tc = solved[:, :3, 3], truth[:, :3, 3]
    length = max(float(np.sum(np.linalg.norm(np.diff(tc, axis=0), axis=1))), 1e-9)
    reach_s = max(float(np.sum(np.linalg.norm(np.diff(sc, axis=0), axis=1))), 1e-9) / 2
    ahead_s = solved[:, :3, 2] / np.linalg.norm(solved[:, :3, 2], axis=1, keepdims=True)
    ahead_t = truth[:, :3, 2] / np.linalg.norm(truth[:, :3, 2], axis=1, keepdims=True)
    return similarity_transform(np.concatenate([sc, sc - ahead_s * reach_s]),
                                np.concatenate([tc, tc - ahead_t * length / 2]))


def similarity_error(solved: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-frame distance between solved and true camera centres after the best similarity alignment, as a
    fraction of the true path length; and that path length. Takes N x 4 x 4 camera matrices (aligned with
    camera_similarity) or N x 3 centres."""
    from blender_mediaidx.core.similarity import apply_similarity, similarity_transform

    solved, truth = np.asarray(solved, dtype=float), np.asarray(truth, dtype=float)
    sc, tc = (solved, truth) if solved.ndim == 2 else (solved[:, :3, 3], truth[:, :3, 3])
    length = float(np.sum(np.linalg.norm(np.diff(tc, axis=0), axis=1)))
    s, r, t = similarity_transform(sc, tc) if solved.ndim == 2 else camera_similarity(solved, truth)
    aligned = apply_similarity(sc, s, r, t)
    return np.linalg.norm(aligned - tc, axis=1) / length, length
