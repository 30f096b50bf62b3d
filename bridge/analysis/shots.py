"""Shots: run the detectors over one decode of the clip and turn their boundaries into a shot list.

Merging rules, so each transition is reported once and typed by what it is: a fade wins over the cuts at
its ends (a cut to black is part of the fade), a dissolve over a cut inside it, and two boundaries closer
than the minimum shot length keep the stronger kind (fade, then dissolve, then cut).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .decode import DecodeControl, SmallFrame, Source, VideoInfo, small_frames
from .detectors import Boundary, Detector, FrameStats, default_detectors

PRIORITY = {"fade": 3, "dissolve": 2, "cut": 1}
CALM = 10.0         # per-frame difference below which a stretch is calm enough to skip non-reference frames
CALM_RUN = 4        # decoded frames in a row that must be calm before skipping starts


@dataclass(slots=True)
class Shot:
    index: int
    start_frame: int
    end_frame: int                 # inclusive
    start_time: float
    end_time: float                # when the next shot starts (the clip's end for the last one)
    boundary: str                  # how it starts: start | cut | fade | dissolve
    score: float | None            # the detector's score for that boundary (None for the first shot)
    transition: tuple[int, int] | None = None   # frames of the fade/dissolve leading into it

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame + 1

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "start_frame": self.start_frame, "end_frame": self.end_frame,
                "start_time": round(self.start_time, 4), "end_time": round(self.end_time, 4),
                "boundary": self.boundary, "score": None if self.score is None else round(self.score, 4),
                "transition": list(self.transition) if self.transition else None}


@dataclass
class ShotResult:
    info: VideoInfo
    frames: int
    shots: list[Shot]
    boundaries: list[Boundary]
    elapsed: float
    stats: FrameStats = field(repr=False, default_factory=FrameStats)

    @property
    def speed(self) -> float:
        """Seconds of video analysed per second of wall time."""
        dur = self.frames / self.info.fps if self.info.fps else 0.0
        return dur / self.elapsed if self.elapsed > 0 else 0.0

    def transition_frames(self) -> set[int]:
        """Frames that belong to a transition (never a key frame)."""
        out: set[int] = set()
        for b in self.boundaries:
            out.update(range(b.start, b.end + 1))
            if b.kind == "cut":
                out.update((b.frame - 1, b.frame + 1))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.info.path, "video": self.info.to_dict(), "frames": self.frames,
                "elapsed": round(self.elapsed, 3), "speed": round(self.speed, 2),
                "shots": [s.to_dict() for s in self.shots]}


def merge_boundaries(found: Sequence[Boundary], n_frames: int, min_frames: int) -> list[Boundary]:
    fades = [b for b in found if b.kind == "fade"]
    dissolves = [b for b in found if b.kind == "dissolve"
                 if not any(f.start - 1 <= b.frame <= f.end + 1 or (b.start <= f.frame <= b.end) for f in fades)]
    spans = fades + dissolves
    cuts = [b for b in found if b.kind == "cut" and not any(s.start - 1 <= b.frame <= s.end + 1 for s in spans)]
    kept: list[Boundary] = []
    for b in sorted(fades + dissolves + cuts, key=lambda x: (-PRIORITY[x.kind], -x.score)):
        if b.frame < min_frames or b.frame > n_frames - 1:
            continue
        if any(abs(b.frame - k.frame) < min_frames for k in kept):
            continue
        kept.append(b)
    return sorted(kept, key=lambda x: x.frame)


def _to_frames(b: Boundary, index: Sequence[int]) -> Boundary:
    """Detectors count positions in the decoded sequence; shots are in frames of the clip."""
    last = len(index) - 1
    return Boundary(index[min(b.frame, last)], b.kind, b.score, index[min(b.start, last)], index[min(b.end, last)],
                    b.detector)


def build_shots(boundaries: Sequence[Boundary], stats: FrameStats, n_frames: int, fps: float) -> list[Shot]:
    at = dict(zip(stats.index, stats.time, strict=True))

    def when(frame: int) -> float:
        return at.get(frame, frame / fps)

    starts: list[tuple[int, str, float | None, tuple[int, int] | None]] = [(0, "start", None, None)]
    for b in boundaries:
        starts.append((b.frame, b.kind, b.score, (b.start, b.end) if b.kind != "cut" else None))
    end_of_clip = when(n_frames - 1) + 1 / fps
    shots = []
    for i, (s, kind, score, span) in enumerate(starts):
        e = starts[i + 1][0] - 1 if i + 1 < len(starts) else n_frames - 1
        shots.append(Shot(i, s, e, when(s), when(e + 1) if e + 1 < n_frames else end_of_clip, kind, score, span))
    return shots


def detect_shots(source: Source, detectors: Sequence[Detector] | None = None, *, fast: bool = True,
                 adaptive: bool | None = None, min_shot: float = 0.3,
                 on_frame: Callable[[SmallFrame, FrameStats], None] | None = None,
                 keep_frame: bool = False, threads: int = 0) -> ShotResult:
    """Decode ``source`` once at analysis size and find its shots.

    ``fast`` skips the deblocking filter. ``adaptive`` (default: when ``fast``) leaves out the frames no
    other frame refers to (about half of a B-frame stream) while the picture is calm, and decodes every
    frame again as soon as it moves: a cut in a calm stretch stands out even at half the frame rate, and
    where the action is fast every frame is looked at. A cut that falls on a skipped frame is reported
    at the next decoded one (encoders put a reference frame at a cut, so this is rare and a frame off).
    ``on_frame`` sees every decoded frame after the detectors (the key-frame picker samples candidates
    there); ``keep_frame`` hands it the PyAV frame too.
    """
    dets = list(detectors) if detectors is not None else default_detectors()
    stats = FrameStats()
    info_out: list[VideoInfo] = []
    started = time.perf_counter()
    started_dets = False
    control = DecodeControl() if (fast if adaptive is None else adaptive) else None
    calm_run = 0
    for f in small_frames(source, fast=fast, control=control, keep_frame=keep_frame, threads=threads,
                          info_out=info_out):
        if not started_dets:
            rate = info_out[0].fps
            for d in dets:
                d.start(rate)
            started_dets = True
        stats.add(f)
        for d in dets:
            d.process(f, stats)
        if on_frame is not None:
            on_frame(f, stats)
        if control is not None:
            gap = f.index - stats.index[-2] if len(stats) > 1 else 1
            calm_run = calm_run + 1 if stats.diff[-1] / max(1, gap) < CALM else 0
            control.skip_nonref = calm_run >= CALM_RUN
    info = info_out[0]
    found = [_to_frames(b, stats.index) for d in dets for b in d.finish(stats)]
    n = info.frames or len(stats)
    boundaries = merge_boundaries(found, n, max(1, round(min_shot * info.fps)))
    shots = build_shots(boundaries, stats, n, info.fps)
    return ShotResult(info, n, shots, boundaries, time.perf_counter() - started, stats)
