"""Clips with known shot boundaries, made with ffmpeg's test sources, for tests and the benchmark.

Each segment is an lavfi source (moving test patterns, colour bars, a zooming Mandelbrot set) and each
join is a cut, a fade through black or a cross-dissolve, so the truth is exact by construction: a cut or a
fade starts the new shot at the first frame of the next segment; a dissolve's new shot starts half way
through the blend.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

SOURCES = ("testsrc2", "smptebars", "mandelbrot", "testsrc", "rgbtestsrc", "yuvtestsrc")
FAST_SOURCES = ("testsrc2", "smptebars", "testsrc", "rgbtestsrc", "yuvtestsrc")  # cheap at HD sizes


@dataclass(frozen=True)
class Segment:
    source: str                    # an lavfi source name, optionally with options ("color=c=red")
    frames: int
    join: str = "cut"              # how this segment starts after the previous one: cut | fade | dissolve
    join_frames: int = 0           # fade-out + fade-in length, or dissolve length, in frames


@dataclass(frozen=True)
class TruthBoundary:
    frame: int
    kind: str


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(path: str | os.PathLike[str], segments: Sequence[Segment], *, width: int = 320, height: int = 240,
              fps: int = 25, crf: int = 20, preset: str = "veryfast") -> list[TruthBoundary]:
    """Encode ``segments`` into one H.264 clip; returns where each new shot really starts."""
    args: list[str] = [ffmpeg_exe(), "-y", "-v", "error"]
    filters: list[str] = []
    lengths: list[int] = []
    for i, seg in enumerate(segments):
        src = seg.source if "=" in seg.source else f"{seg.source}="
        sep = ":" if not src.endswith("=") else ""
        extra = seg.frames + (segments[i + 1].join_frames if i + 1 < len(segments)
                              and segments[i + 1].join == "dissolve" else 0)
        args += ["-f", "lavfi", "-t", f"{extra / fps + 0.5:.3f}", "-i", f"{src}{sep}size={width}x{height}:rate={fps}"]
        lengths.append(extra)
    truth: list[TruthBoundary] = []
    # Fades are applied to each segment's own ends before joining.
    labels = []
    for i, seg in enumerate(segments):
        chain = f"[{i}:v]trim=end_frame={lengths[i]},settb=1/{fps},setpts=N,format=yuv420p"
        nxt = segments[i + 1] if i + 1 < len(segments) else None
        if nxt is not None and nxt.join == "fade":
            d = max(1, nxt.join_frames // 2)
            chain += f",fade=t=out:s={seg.frames - d}:n={d}"
        if seg.join == "fade" and i > 0:
            d = max(1, seg.join_frames - seg.join_frames // 2)
            chain += f",fade=t=in:s=0:n={d}"
        filters.append(chain + f"[s{i}]")
        labels.append(f"s{i}")
    current = labels[0]
    length = segments[0].frames
    for i, seg in enumerate(segments[1:], start=1):
        out = f"j{i}"
        if seg.join == "dissolve":
            d = max(2, seg.join_frames)
            offset = length
            filters.append(f"[{current}][{labels[i]}]xfade=transition=fade:duration={d / fps:.6f}:"
                           f"offset={offset / fps:.6f},settb=1/{fps},setpts=N[{out}]")
            truth.append(TruthBoundary(offset + d // 2, "dissolve"))
            length = offset + seg.frames
        else:
            filters.append(f"[{current}][{labels[i]}]concat=n=2:v=1:a=0,settb=1/{fps},setpts=N[{out}]")
            truth.append(TruthBoundary(length, seg.join))
            length += seg.frames
        current = out
    args += ["-filter_complex", ";".join(filters), "-map", f"[{current}]", "-c:v", "libx264", "-preset", preset,
             "-crf", str(crf), "-pix_fmt", "yuv420p", "-r", str(fps), str(path)]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.strip()[-800:]}")
    return truth


def varied_segments(count: int, *, fps: int = 25, seed: int = 1, sources: Sequence[str] = SOURCES,
                    fades: bool = True, dissolves: bool = True, min_s: float = 1.5, max_s: float = 6.0
                    ) -> list[Segment]:
    """A reproducible mix: mostly cuts, every fifth join a fade, every seventh a dissolve."""
    import random

    rng = random.Random(seed)
    segs = []
    prev = None
    for i in range(count):
        src = rng.choice([s for s in sources if s != prev])
        prev = src
        frames = round(rng.uniform(min_s, max_s) * fps)
        join, jf = "cut", 0
        if i and fades and i % 5 == 0:
            join, jf = "fade", round(0.8 * fps)
        elif i and dissolves and i % 7 == 0:
            join, jf = "dissolve", round(1.0 * fps)
        segs.append(Segment(src, frames, join, jf))
    return segs


def total_frames(segments: Sequence[Segment]) -> int:
    return sum(s.frames for s in segments)

