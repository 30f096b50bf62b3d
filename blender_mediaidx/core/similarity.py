"""Similarity transforms (scale, rotation, translation) between point sets: Umeyama's closed form.

Used to carry a witness camera's solve into the hero's space through shared survey points, and by the
tests to compare a solve (arbitrary scale and frame) with the true camera path.
Why not a library: numpy's SVD is the whole algorithm; scipy's `Rotation.align_vectors` has no scale and
OpenCV's `estimateAffine3D` is not a similarity.
"""

from __future__ import annotations

import numpy as np


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(s, R, t) minimising sum |s R src_i + t - dst_i|^2 (Umeyama 1991). Needs 3 non-collinear points."""
    src = np.asarray(src, dtype=float)
    dst = np.asarray(dst, dtype=float)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise ValueError("need two N x 3 arrays of corresponding points")
    if len(src) < 3:
        raise ValueError(f"need at least 3 corresponding points, got {len(src)}")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = float((xs ** 2).sum() / len(src))
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    if var_s < 1e-18 or d[1] < 1e-12 * max(d[0], 1e-300):
        raise ValueError("the points are collinear or coincide: a similarity needs 3 points not on one line")
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / var_s)
    trans = mu_d - scale * rot @ mu_s
    return scale, rot, trans


def apply_similarity(points: np.ndarray, scale: float, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    return scale * np.asarray(points, dtype=float) @ rot.T + trans


def similarity_matrix(scale: float, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """The 4x4 matrix of a similarity, to left-multiply world matrices."""
    m = np.eye(4)
    m[:3, :3] = scale * rot
    m[:3, 3] = trans
    return m


def transform_camera(matrix: np.ndarray, scale: float, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """A camera world matrix moved by a similarity, kept rigid (unit axes): the scale moves the camera's
    position, not the size of its frame."""
    m = np.asarray(matrix, dtype=float)
    out = np.eye(4)
    out[:3, :3] = rot @ m[:3, :3]
    out[:3, 3] = scale * rot @ m[:3, 3] + trans
    return out
