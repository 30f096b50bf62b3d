"""Key frames (one per shot) and the clip's hero image, chosen during the same decode as the shots.

While the shots are being found, a bounded pool keeps the best-looking frame of each short stretch of the
clip (by a quick score on the small picture) as a small RGB picture; when the pool grows past its cap the
stretches double in length, so memory stays bounded for any length of clip. Once the shots are known, each
shot's candidates (never transition frames) get the full scores and the best one, preferring one unlike
the key frames already chosen, is the shot's key frame. The hero is the best key frame, weighted a little by
the length of its shot. A shot with no candidate left gets its middle frame decoded by a seek.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .decode import SmallFrame, Source, frame_rgb, grab_frames, rotate
from .detectors import FrameStats
from .quality import SCORE_SIDE, cheap_score, frame_scores, similarity
from .shots import Shot, ShotResult

PER_SHOT = 3                 # candidates per shot that get the full (face-detecting) scores
DIVERSITY = 0.92             # colour-histogram correlation above which two key frames count as alike


@dataclass(slots=True)
class Candidate:
    index: int
    time: float
    position: int            # position in FrameStats
    cheap: float
    image: np.ndarray        # RGB, long side SCORE_SIDE


@dataclass
class Pick:
    """A chosen frame and why: ``scores`` holds every measure (see bridge.analysis.quality)."""

    shot: int
    frame: int
    time: float
    scores: dict[str, Any]
    image: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"shot": self.shot, "frame": self.frame, "time": round(self.time, 4), "scores": self.scores}


class CandidatePool:
    """Collects candidate pictures during the shot-detection decode (use as ``on_frame``)."""

    def __init__(self, fps: float, *, rotation: float = 0.0, stretch: float = 0.5, cap: int = 300,
                 per_second: float = 6.0) -> None:
        self.rotation = rotation
        self.stretch = stretch
        self.cap = cap
        self.every = max(1, round(fps / per_second))
        self.buckets: dict[int, Candidate] = {}

    def __call__(self, f: SmallFrame, stats: FrameStats) -> None:
        pos = len(stats) - 1
        if f.index % self.every or f.frame is None or pos == 0:
            return  # the very first frame has no motion measure yet (and is often a slate or black)
        cheap = cheap_score(f.y, stats.diff[pos])
        key = int(f.time // self.stretch)
        cur = self.buckets.get(key)
        if cur is not None and cur.cheap >= cheap:
            return
        self.buckets[key] = Candidate(f.index, f.time, pos, cheap, rotate(frame_rgb(f.frame, SCORE_SIDE), self.rotation))
        if len(self.buckets) > self.cap:
            self._coarsen()

    def _coarsen(self) -> None:
        self.stretch *= 2
        merged: dict[int, Candidate] = {}
        for c in self.buckets.values():
            key = int(c.time // self.stretch)
            if key not in merged or merged[key].cheap < c.cheap:
                merged[key] = c
        self.buckets = merged

    def candidates(self) -> list[Candidate]:
        return sorted(self.buckets.values(), key=lambda c: c.index)


def _motion(stats: FrameStats, pos: int) -> float:
    lo, hi = max(1, pos), min(len(stats.diff), pos + 2)
    vals = stats.diff[lo:hi]
    return float(sum(vals) / len(vals)) if vals else 0.0


def select_keyframes(source: Source, result: ShotResult, pool: CandidatePool) -> list[Pick]:
    """One key frame per shot, each with its scores."""
    transition = result.transition_frames()
    cands = [c for c in pool.candidates() if c.index not in transition]
    per_shot: dict[int, list[Candidate]] = {s.index: [] for s in result.shots}
    it = iter(result.shots)
    shot: Shot | None = next(it, None)
    for c in cands:
        while shot is not None and c.index > shot.end_frame:
            shot = next(it, None)
        if shot is None:
            break
        if c.index >= shot.start_frame:
            per_shot[shot.index].append(c)
    missing = [s for s in result.shots if not per_shot[s.index]]
    if missing:
        at = {s.index: s.start_time + (s.end_time - s.start_time) / 2 for s in missing}
        grabbed = grab_frames(source, at.values(), SCORE_SIDE)
        for s in missing:
            t = at[s.index]
            if t in grabbed:
                pos = stats_positions(result.stats, [t])[0]
                per_shot[s.index].append(Candidate(result.stats.index[pos], t, pos, 0.0,
                                                    rotate(grabbed[t], pool.rotation)))
    picks: list[Pick] = []
    for s in result.shots:
        options = sorted(per_shot[s.index], key=lambda c: -c.cheap)[:PER_SHOT]
        scored = [(frame_scores(c.image, motion=_motion(result.stats, c.position)), c) for c in options]
        scored.sort(key=lambda sc: -sc[0]["total"])
        if not scored:
            continue
        best_scores, best = scored[0]
        for sc, c in scored[1:]:  # a close second that looks unlike the previous key frames wins
            if not picks or sc["total"] < 0.85 * best_scores["total"]:
                break
            if max(similarity(best.image, p.image) for p in picks[-3:]) > DIVERSITY and \
                    max(similarity(c.image, p.image) for p in picks[-3:]) <= DIVERSITY:
                best_scores, best = sc, c
                best_scores["chosen_for_diversity"] = True
                break
        picks.append(Pick(s.index, best.index, best.time, best_scores, best.image))
    return picks


def stats_positions(stats: FrameStats, times: Any) -> list[int]:
    """The position in ``stats`` nearest to each time."""
    arr = np.asarray(stats.time)
    return [int(np.abs(arr - t).argmin()) if arr.size else 0 for t in times]


def pick_hero(picks: list[Pick], shots: list[Shot]) -> Pick | None:
    """The best key frame, weighted a little towards longer shots (more representative of the clip)."""
    if not picks:
        return None
    length = {s.index: s.end_time - s.start_time for s in shots}
    best: Pick | None = None
    best_value = -1.0
    for p in picks:
        weight = 0.85 + 0.15 * min(1.0, length.get(p.shot, 0.0) / 3.0)
        value = p.scores["total"] * weight
        if value > best_value:
            best, best_value = p, value
    assert best is not None
    scores = dict(best.scores, shot_weight=round(0.85 + 0.15 * min(1.0, length.get(best.shot, 0.0) / 3.0), 4),
                  hero_score=round(best_value, 4))
    return Pick(best.shot, best.frame, best.time, scores, best.image)
