"""How good a frame looks: the measures behind every key-frame and hero pick, each in 0..1.

Objective measures (sharpness, exposure, colour) are what editors' thumbnail choices correlate with
(Hecate, CIKM 2016); faces are what viewers look at. Every measure goes into the pick's ``scores`` so a
user can see why a frame won.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

SCORE_SIDE = 320             # pictures are scored at this long side, so sharpness is comparable across clips
BLACK = 0.07                 # mean brightness below this: black
FLASH = 0.93                 # above: flash / white
FLAT = 0.025                 # brightness std below this: a flat frame (slate, lens cap, fade)
WEIGHTS = {"sharpness": 0.30, "exposure": 0.20, "colourfulness": 0.15, "stillness": 0.15, "faces": 0.20}

_cascades: dict[str, cv2.CascadeClassifier] = {}
_cascade_lock = threading.Lock()


def cascade(name: str) -> cv2.CascadeClassifier:
    """One of OpenCV's bundled Haar cascades (they ship in the wheel: no download)."""
    with _cascade_lock:
        if name not in _cascades:
            _cascades[name] = cv2.CascadeClassifier(cv2.data.haarcascades + name)
        return _cascades[name]


def to_score_size(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = SCORE_SIDE / max(h, w)
    if abs(scale - 1) < 0.02:
        return rgb
    return cv2.resize(rgb, (max(2, round(w * scale)), max(2, round(h * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Süsstrunk (2003): spread and strength of the opponent colours rg and yb, 0..~150."""
    f = rgb.astype(np.float32)
    rg = f[..., 0] - f[..., 1]
    yb = 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian: high for in-focus detail, low for defocus and motion blur."""
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def detect_faces(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces, each confirmed by two eyes in its upper half: the face cascade alone fires on
    foliage, flowers and cartoon shapes."""
    eq = cv2.equalizeHist(gray)
    size = max(20, gray.shape[0] // 14)
    found = cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        eq, scaleFactor=1.1, minNeighbors=5, minSize=(size, size))
    out = []
    for x, y, w, h in (found if len(found) else []):
        upper = cv2.resize(eq[y:y + h * 5 // 8, x:x + w], (160, 100), interpolation=cv2.INTER_LINEAR)
        if len(cascade("haarcascade_eye.xml").detectMultiScale(upper, 1.1, 3, minSize=(18, 18))) >= 2:
            out.append((int(x), int(y), int(w), int(h)))
    return out


def frame_scores(rgb: np.ndarray, *, motion: float | None = None, faces: bool = True) -> dict[str, Any]:
    """All measures for one RGB frame. ``motion`` is the frame difference around it (analysis units)."""
    img = to_score_size(rgb)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    brightness = float(gray.mean()) / 255
    contrast = float(gray.std()) / 255
    lap = sharpness(gray)
    hist = np.bincount(gray.ravel(), minlength=256) / gray.size
    clipped = float(hist[:6].sum() + hist[250:].sum())
    exposure = max(0.0, 1 - 0.6 * min(1.0, 2.2 * abs(brightness - 0.45)) - 0.4 * min(1.0, 2.5 * clipped))
    exposure *= min(1.0, contrast / 0.12)
    colour = colourfulness(img)
    boxes = detect_faces(gray) if faces else []
    area = max((w * h for _x, _y, w, h in boxes), default=0) / gray.size
    scores: dict[str, Any] = {
        "sharpness": round(lap / (lap + 250.0), 4),
        "laplacian_var": round(lap, 1),
        "exposure": round(exposure, 4),
        "brightness": round(brightness, 4),
        "contrast": round(contrast, 4),
        "clipped": round(clipped, 4),
        "colourfulness": round(min(1.0, colour / 90.0), 4),
        "colourfulness_hs": round(colour, 2),
        "faces": round(min(1.0, 0.5 + 6 * area) if boxes else 0.0, 4),
        "face_count": len(boxes),
        "stillness": round(1 / (1 + motion / 12.0), 4) if motion is not None else 0.5,
        "rejected": None,
    }
    if brightness < BLACK:
        scores["rejected"] = "black"
    elif brightness > FLASH:
        scores["rejected"] = "flash"
    elif contrast < FLAT:
        scores["rejected"] = "flat"
    scores["total"] = total(scores)
    return scores


def total(scores: dict[str, Any]) -> float:
    value = sum(w * float(scores.get(k) or 0) for k, w in WEIGHTS.items())
    if scores.get("rejected"):
        value *= 0.1
    return round(value, 4)


def cheap_score(y: np.ndarray, motion: float) -> float:
    """A quick ranking of the small analysis picture, to decide which frames are worth keeping."""
    mean = float(y.mean()) / 255
    std = float(y.std()) / 255
    if mean < BLACK or mean > FLASH or std < FLAT:
        return 0.0
    lap = float(cv2.Laplacian(y, cv2.CV_32F).var())
    return (lap / (lap + 400.0)) * 0.5 + min(1.0, std / 0.2) * 0.2 + (1 - min(1.0, 2 * abs(mean - 0.45))) * 0.15 \
        + 0.15 / (1 + motion / 12.0)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Colour-histogram correlation of two pictures (1 = same colours): keeps key frames diverse."""
    ha = _hist(a)
    hb = _hist(b)
    return float(cv2.compareHist(ha, hb, cv2.HISTCMP_CORREL))


def _hist(rgb: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(to_score_size(rgb), cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], None, [12, 4, 4], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(h, h).flatten()
