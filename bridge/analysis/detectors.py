"""Shot-boundary detectors: each finds one kind of transition in the stream of small frames.

The interface follows PySceneDetect's (a detector sees every frame, then reports), so a new detector is one
class: ``start`` gets the frame rate, ``process`` sees each frame with the shared per-frame measures,
``finish`` returns boundaries. Detectors keep only scalars per frame plus a short ring of small pictures,
so hours of video fit in memory.

Units: a frame difference is mean |ΔY| + mean |ΔU| + mean |ΔV| on the 8-bit analysis pictures.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from .decode import SmallFrame


@dataclass(slots=True)
class Boundary:
    """The start of a new shot: ``frame`` is its first frame; ``start``..``end`` is the transition
    (equal to ``frame`` for a cut)."""

    frame: int
    kind: str                  # cut | fade | dissolve
    score: float               # how clearly the detector saw it (see each detector)
    start: int
    end: int
    detector: str

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.frame, "kind": self.kind, "score": round(self.score, 4), "start": self.start,
                "end": self.end, "detector": self.detector}


@dataclass
class FrameStats:
    """Per-frame measures the detectors and the key-frame picker share (scalars only).

    Detectors address frames by position in these lists; ``index`` maps a position to the frame number in
    the clip (they differ when the decoder skips non-reference frames).
    """

    index: list[int] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    luma: list[float] = field(default_factory=list)      # mean Y, 0..255
    contrast: list[float] = field(default_factory=list)  # std of Y
    diff: list[float] = field(default_factory=list)      # difference to the previous frame (0 for the first)
    _prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, f: SmallFrame) -> None:
        mean, std = cv2.meanStdDev(f.y)
        self.index.append(f.index)
        self.time.append(f.time)
        self.luma.append(float(mean[0, 0]))
        self.contrast.append(float(std[0, 0]))
        self.diff.append(frame_diff(self._prev, (f.y, f.u, f.v)) if self._prev is not None else 0.0)
        self._prev = (f.y, f.u, f.v)

    def __len__(self) -> int:
        return len(self.time)


def frame_diff(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> float:
    """Mean absolute difference of Y, U and V, summed."""
    return float(sum(cv2.mean(cv2.absdiff(x, y))[0] for x, y in zip(a, b, strict=True)))


class Detector(Protocol):
    """``finish`` returns boundaries whose frame numbers are positions in ``stats`` (the caller maps them
    to frames of the clip through ``stats.index``)."""

    name: str

    def start(self, fps: float) -> None: ...

    def process(self, f: SmallFrame, stats: FrameStats) -> None: ...

    def finish(self, stats: FrameStats) -> list[Boundary]: ...


class ContentDetector:
    """Hard cuts: a frame whose difference to the previous one stands out from its neighbourhood.

    A cut must be the local maximum of the difference within ±``window`` frames, at least ``min_score``,
    and ``ratio`` times the second-largest difference of its neighbours (one neighbour may be high too:
    a cut smeared over two frames by telecine or a blended frame). Fast action raises every neighbour,
    so it does not pass. A frame whose picture comes back two to four frames later (a flash, a glitch)
    is not a cut. Score: the neighbourhood ratio.
    """

    name = "content"

    def __init__(self, min_score: float = 20.0, ratio: float = 1.8, window: int = 3, flash_return: float = 0.5
                 ) -> None:
        self.min_score = min_score
        self.ratio = ratio
        self.window = window
        self.flash_return = flash_return
        self._ring: deque[tuple[np.ndarray, ...]] = deque(maxlen=6)
        self._back: dict[int, float] = {}

    def start(self, fps: float) -> None:
        self._ring.clear()
        self._back.clear()

    def process(self, f: SmallFrame, stats: FrameStats) -> None:
        self._ring.append((f.y, f.u, f.v))
        j = len(stats) - 1
        for k in (2, 3, 4):
            i = j - k
            if i < 1 or stats.diff[i] < self.min_score or len(self._ring) < k + 2:
                continue
            before = self._ring[-(k + 2)]          # frame i - 1
            d = frame_diff(before, self._ring[-1]) / stats.diff[i]
            self._back[i] = min(self._back.get(i, d), d)

    def finish(self, stats: FrameStats) -> list[Boundary]:
        diff = np.asarray(stats.diff, dtype=np.float64)
        n = len(diff)
        # Frames apart of each difference (more than 1 where non-reference frames were skipped): motion
        # grows with the gap, so neighbours are compared as if they spanned the candidate's gap.
        gap = np.maximum(1, np.diff(np.asarray(stats.index, dtype=np.float64), prepend=-1.0))
        out: list[Boundary] = []
        for i in np.flatnonzero(diff >= self.min_score):
            lo, hi = max(1, i - self.window), min(n, i + self.window + 1)
            scale = np.concatenate([gap[lo:i], gap[i + 1:hi]])
            neigh = np.concatenate([diff[lo:i], diff[i + 1:hi]]) * (gap[i] / scale)
            if neigh.size and diff[i] < neigh.max():
                continue
            second = np.sort(neigh)[-2] if neigh.size >= 2 else 0.0
            ratio = diff[i] / max(second, 2.0)
            if ratio < self.ratio:
                continue
            if self._back.get(int(i), 1.0) < self.flash_return:
                continue
            out.append(Boundary(int(i), "cut", float(ratio), int(i), int(i), self.name))
        return out


class FadeDetector:
    """Fades to and from black (or white): a run of dark, flat frames between two pictures.

    The new shot starts after the darkest frame of the run (where its picture begins to come back); the
    transition spans the fade-out before it
    and the fade-in after it (brightness falling, then rising, up to ``max_fade`` seconds each). A clip
    that starts or ends dark has no boundary there. Score: how far the brightness fell, 0..1.
    """

    name = "fade"

    def __init__(self, dark: float = 30.0, bright: float = 225.0, flat: float = 10.0, max_fade: float = 3.0
                 ) -> None:
        self.dark = dark
        self.bright = bright
        self.flat = flat
        self.max_fade = max_fade
        self.fps = 25.0

    def start(self, fps: float) -> None:
        self.fps = fps

    def process(self, f: SmallFrame, stats: FrameStats) -> None:
        return  # works on the shared brightness series

    def finish(self, stats: FrameStats) -> list[Boundary]:
        luma = np.asarray(stats.luma)
        std = np.asarray(stats.contrast)
        n = len(luma)
        flat = std <= self.flat
        out: list[Boundary] = []
        for _colour, mask, sign in (("black", (luma <= self.dark) & flat, 1), ("white", (luma >= self.bright) & flat, -1)):
            i = 0
            while i < n:
                if not mask[i]:
                    i += 1
                    continue
                j = i
                while j + 1 < n and mask[j + 1]:
                    j += 1
                run_start, run_end = i, j
                i = j + 1
                if run_start == 0 or run_end == n - 1:
                    continue
                reach = max(2, round(self.max_fade * self.fps))
                a = run_start
                while a > 0 and run_start - a < reach and sign * (luma[a - 1] - luma[a]) > 0.3:
                    a -= 1
                b = run_end
                while b < n - 1 and b - run_end < reach and sign * (luma[b + 1] - luma[b]) > 0.3:
                    b += 1
                if run_end - run_start < 1 and run_start - a < 2 and b - run_end < 2:
                    continue  # one odd frame, no fade around it
                depth = abs(max(luma[a], luma[b]) - luma[run_start:run_end + 1].mean()) if sign > 0 else \
                    abs(luma[run_start:run_end + 1].mean() - min(luma[a], luma[b]))
                # The new shot starts where its picture begins to come back: after the darkest (or
                # brightest) frame of the run, not after the last frame under the threshold.
                run = luma[run_start:run_end + 1] * sign
                extreme = run.min()
                last = run_start + int(np.flatnonzero(run <= extreme + 2.0)[-1])
                out.append(Boundary(last + 1, "fade", float(min(1.0, depth / 128)), int(a), int(b), self.name))
        return sorted(out, key=lambda x: x.frame)


class DissolveDetector:
    """Cross-dissolves: over ``L`` frames the picture moves steadily from one shot to the next.

    For a window [s, e] (several lengths from a quarter second to two seconds) the endpoints must differ as
    much as a cut would (``min_change``), the frames in between must be the blends a dissolve makes
    (quarter, middle and three-quarter frames close to the weighted means of the endpoints, within
    ``max_nonlinear`` of the change), and the frame-to-frame differences must add up to about the change
    (``max_path``): camera and subject motion wander much further. Half a window before it, the outgoing
    shot must look much like it does at the start (``max_before``): steady motion changes as much there too.
    The new shot starts where the picture
    becomes closer to the incoming shot than to the outgoing one. Score: 1 - non-linearity.
    """

    name = "dissolve"

    def __init__(self, lengths: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0), min_change: float = 30.0,
                 max_nonlinear: float = 0.15, max_path: float = 1.6, max_before: float = 0.4) -> None:
        self.lengths_s = lengths
        self.min_change = min_change
        self.max_before = max_before
        self.max_nonlinear = max_nonlinear
        self.max_path = max_path
        self.lengths: list[int] = []
        self._ring: deque[tuple[int, int, np.ndarray]] = deque()
        self._steps: deque[float] = deque()
        self._cands: list[tuple[float, int, int, int, float]] = []

    def start(self, fps: float) -> None:
        self.lengths = sorted({max(4, round(s * fps)) for s in self.lengths_s})
        size = self.lengths[-1] + self.lengths[-1] // 2 + 1
        self._ring = deque(maxlen=size)
        self._steps = deque(maxlen=size)
        self._cands = []

    @staticmethod
    def _dist(a: np.ndarray, b: np.ndarray) -> float:
        return float(cv2.norm(a, b, cv2.NORM_L1))

    @staticmethod
    def _nearest(frames: list[int], target: float) -> int | None:
        """The ring entry nearest to frame ``target`` (None when the ring does not reach back that far)."""
        if target < frames[0]:
            return None
        i = bisect.bisect_left(frames, target)
        if i >= len(frames):
            return len(frames) - 1
        return i if i == 0 or frames[i] - target <= target - frames[i - 1] else i - 1

    def process(self, f: SmallFrame, stats: FrameStats) -> None:
        # One vector per frame, each plane scaled by 1/its size: the L1 norm of a difference is then
        # mean |dY| + mean |dU| + mean |dV|, in one call. Windows are measured in frames of the clip, so
        # skipped non-reference frames do not bend them.
        h, w = f.y.shape
        y = cv2.resize(f.y, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        u = cv2.resize(f.u, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
        v = cv2.resize(f.v, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
        tiny = np.concatenate([y.ravel().astype(np.float32) / y.size, u.ravel().astype(np.float32) / u.size,
                               v.ravel().astype(np.float32) / v.size])
        self._steps.append(self._dist(tiny, self._ring[-1][2]) if self._ring else 0.0)
        self._ring.append((len(stats) - 1, f.index, tiny))
        ring = list(self._ring)
        frames = [r[1] for r in ring]
        steps = list(self._steps)
        e_pos, e_idx, fe = ring[-1]
        for L in self.lengths:
            j = self._nearest(frames, e_idx - L)
            if j is None:
                break
            s_pos, s_idx, fs = ring[j]
            span = e_idx - s_idx
            if span < 3:
                continue
            change = self._dist(fs, fe)
            if change < self.min_change:
                continue
            if sum(steps[j + 1:]) > self.max_path * change:
                continue
            b = self._nearest(frames, s_idx - span // 2)
            if b is not None and frames[b] < s_idx and self._dist(ring[b][2], fs) > self.max_before * change:
                continue  # the picture was already changing this fast before: motion, not a dissolve
            err = 0.0
            for frac in (0.25, 0.5, 0.75):
                k = self._nearest(frames, s_idx + frac * span)
                k = j if k is None else k
                a = (frames[k] - s_idx) / span
                err += self._dist(ring[k][2], (1 - a) * fs + a * fe)
            nonlinear = err / 3 / change
            if nonlinear > self.max_nonlinear:
                continue
            cross = next(ring[k][0] for k in range(j, len(ring))
                         if self._dist(ring[k][2], fe) <= self._dist(ring[k][2], fs))
            self._cands.append((change * (1 - nonlinear), s_pos, e_pos, cross, 1 - nonlinear))

    def finish(self, stats: FrameStats) -> list[Boundary]:
        taken: list[tuple[int, int]] = []
        out: list[Boundary] = []
        for _strength, s, e, cross, score in sorted(self._cands, reverse=True):
            if any(s <= b and a <= e for a, b in taken):
                continue
            taken.append((s, e))
            out.append(Boundary(cross, "dissolve", score, s, e, self.name))
        return sorted(out, key=lambda x: x.frame)


def default_detectors() -> list[Detector]:
    return [ContentDetector(), FadeDetector(), DissolveDetector()]
