"""A group of recordings of one shoot on one timeline: a graph of pairwise offsets.

Cameras are started and stopped many times, so a clip may share no sound with the reference (the recorder or the
longest recording) yet overlap another camera's clip that does. So:

1. every file's band envelope is decoded once (streamed), and every pair gets its coarse candidate offsets with
   confidences (`align.coarse_candidates`; cheap: 200 values per second);
2. a spanning tree is grown from the reference: first each clip's edges to the reference itself (every hop adds
   an edge's error, and an extrapolation where a short overlap cannot measure drift), then for the clips left
   the strongest coarse edge from any placed clip (Prim: a maximum spanning tree by confidence). Each edge is
   verified with the fine windows (`align.sync_pair`) before it places a clip (offsets and drift compose along
   the path); a rejected one is dropped and the next candidate tried;
3. the edges left over close cycles: each must agree with the tree. When one disagrees at the coarse level it is
   verified too, and if two verified paths give different offsets the weakest edge of the cycle is cut and the
   clips hanging below it become unsynced ("conflicting"), never a confident wrong offset;
4. clips no verified edge reaches are unsynced, with the reason they failed against the reference.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np

from . import decode
from .align import ENV_RATE, MIN_CONFIDENCE, SyncResult, _frames, coarse_candidates, onset_envelope, sync_pair

COARSE_AGREE_S = 0.03   # a leftover coarse edge agrees with the tree within this (plus drift over the overlap)
FINE_AGREE_S = 0.01     # two verified paths to one clip must agree within this


@dataclass
class Placement:
    offset: float          # where the clip's t = 0 lies on the reference's timeline
    scale: float           # reference seconds per clip second (1 + slope); 1 - drift
    drift_known: bool
    parent: int | None
    confidence: float      # the weakest coarse confidence on the path from the reference
    result: SyncResult     # the verifying pair result (clip on its parent)


def compose(parent: Placement, edge: SyncResult) -> tuple[float, float]:
    """(offset, scale) of the edge's clip on the reference timeline: the parent maps its time u to
    parent.offset + parent.scale * u, the edge maps the clip's t to u = off + (1 + slope) t."""
    slope = -(edge.drift_ppm or 0.0) * 1e-6
    off = float(edge.offset_seconds or 0.0)
    return parent.offset + parent.scale * off, parent.scale * (1.0 + slope)


def place_group(n: int, ref: int, coarse: dict[tuple[int, int], list[tuple[float, float]]], lengths: list[float],
                verify: Callable[[int, int, tuple[float, float]], SyncResult],
                names: list[str] | None = None) -> tuple[dict[int, Placement], dict[int, str]]:
    """The graph part, without decoding: `coarse[(i, j)]` = candidate (offset of j on i's timeline, confidence)
    peaks, best first, for i < j; `lengths` in seconds; `verify(a, b, (offset, confidence))` -> SyncResult of b
    on a. Returns the placements and, for clips left out, why."""
    names = names or [str(i) for i in range(n)]

    def edge(a: int, b: int) -> list[tuple[float, float]]:
        if (a, b) in coarse:
            return coarse[(a, b)]
        return [(-off, conf) for off, conf in coarse[(b, a)]]

    placed: dict[int, Placement] = {
        ref: Placement(0.0, 1.0, True, None, float("inf"), SyncResult(path=names[ref], reference=names[ref],
                                                                       status="reference"))}
    why: dict[int, str] = {}
    heap: list[tuple[int, float, int, int, int]] = []   # (not the reference's edge, -confidence, a, b, candidate)
    tried: set[tuple[int, int, int]] = set()   # (low, high, candidate)

    def push_from(a: int) -> None:
        for b in range(n):
            if b != a and b not in placed:
                for k, (_off, conf) in enumerate(edge(a, b)):
                    if conf >= MIN_CONFIDENCE:
                        heapq.heappush(heap, (int(a != ref), -conf, a, b, k))

    def key(a: int, b: int, k: int) -> tuple[int, int, int]:
        return (min(a, b), max(a, b), k)

    push_from(ref)
    while heap:
        _via, negc, a, b, k = heapq.heappop(heap)
        if b in placed or key(a, b, k) in tried:
            continue
        tried.add(key(a, b, k))
        res = verify(a, b, edge(a, b)[k])
        if res.status != "synced":
            why.setdefault(b, res.reason)
            continue
        other = _ambiguous(a, b, k, res, edge(a, b), verify, tried, key)
        if other is not None:
            # a sound that repeats (a metronome, a loop, a hum) fits at more than one offset: no offset is known
            why[b] = (f"ambiguous: the sound repeats, offsets {res.offset_seconds:+.3f} s and "
                      f"{other.offset_seconds:+.3f} s both fit")
            for r in (res, other):
                r.status, r.reason, r.confidence = "unsynced", why[b], 0.0
            continue
        offset, scale = compose(placed[a], res)
        placed[b] = Placement(offset, scale, placed[a].drift_known and res.drift_ppm is not None, a,
                              min(placed[a].confidence, -negc), res)
        placed[b].result.confidence = round(-negc, 2)
        push_from(b)

    # Cycles: leftover edges between placed clips must agree with the tree.
    for (i, j), cands in sorted(coarse.items(), key=lambda kv: -kv[1][0][1]):
        if i not in placed or j not in placed or placed[j].parent == i or placed[i].parent == j:
            continue
        pi, pj = placed[i], placed[j]

        strong = [(k, off, conf) for k, (off, conf) in enumerate(cands) if conf >= MIN_CONFIDENCE]
        if not strong or any(abs(_tree_says(pi, pj, lengths[i], lengths[j], off)[1] - off)
                             <= COARSE_AGREE_S + 1e-4 * _tree_says(pi, pj, lengths[i], lengths[j], off)[2]
                             for _k, off, _c in strong):
            continue
        for k, off, conf in strong:
            if key(i, j, k) in tried:
                continue
            tried.add(key(i, j, k))
            res = verify(i, j, (off, conf))
            if res.status != "synced":
                continue   # a spurious coarse peak: the fine windows do not confirm it
            tm = _tree_says(pi, pj, lengths[i], lengths[j], off)[0]
            o2, s2 = compose(pi, res)
            gap = abs((o2 + s2 * tm) - (pj.offset + pj.scale * tm))
            if gap <= FINE_AGREE_S:
                break
            # Two verified paths disagree. Which one is wrong cannot be told from these two alone, so the
            # weakest tree edge on the cycle is cut and every clip placed through it is left out: unsynced.
            path_i, path_j = _to_root(placed, i), _to_root(placed, j)
            common = set(path_i) & set(path_j)
            cycle = [v for v in path_i if v not in common] + [v for v in path_j if v not in common]
            weakest = min(cycle, key=lambda v: placed[v].result.confidence or 0.0)
            for v in _subtree(placed, weakest):
                why[v] = (f"conflicting offsets: {names[i]} and {names[j]} by their own sound and through the "
                          f"group differ by {gap * 1000:.0f} ms")
                del placed[v]
            break
    return placed, why


def _ambiguous(a: int, b: int, k: int, res: SyncResult, cands: list[tuple[float, float]],
               verify: Callable[[int, int, tuple[float, float]], SyncResult], tried: set[tuple[int, int, int]],
               key: Callable[[int, int, int], tuple[int, int, int]]) -> SyncResult | None:
    """Another strong coarse candidate of the edge that also passes the fine check, at an offset other than the
    verified one (which of the two fits better is not compared); None when there is none. Why: music whose wrong
    bars outscore the right one is told apart by the fine windows, but a sound that truly repeats passes them at
    every repeat, and picking the first would be a confident wrong offset."""
    for k2, (off, conf) in enumerate(cands):
        if k2 == k or conf < MIN_CONFIDENCE or key(a, b, k2) in tried:
            continue
        tried.add(key(a, b, k2))
        alt = verify(a, b, (off, conf))
        if (alt.status == "synced" and alt.offset_seconds is not None and res.offset_seconds is not None
                and abs(alt.offset_seconds - res.offset_seconds) > FINE_AGREE_S):
            return alt
    return None


def _tree_says(pi: Placement, pj: Placement, len_i: float, len_j: float, off: float) -> tuple[float, float, float]:
    """For a coarse edge (j at `off` on i's timeline): j's time in the middle of the overlap, where the tree puts
    that instant on i's timeline minus it, and the overlap's length. The middle is where a coarse peak's drift
    smear is centred."""
    start, end = max(0.0, -off), min(len_j, len_i - off)
    tm = 0.5 * (start + end) if end > start else 0.0
    return tm, (pj.offset + pj.scale * tm - pi.offset) / pi.scale - tm, max(0.0, end - start)


def _to_root(placed: dict[int, Placement], v: int) -> list[int]:
    out = [v]
    while placed[v].parent is not None:
        v = placed[v].parent  # type: ignore[assignment]
        out.append(v)
    return out


def _subtree(placed: dict[int, Placement], v: int) -> list[int]:
    out, todo = [], [v]
    while todo:
        u = todo.pop()
        out.append(u)
        todo.extend(w for w, p in placed.items() if p.parent == u)
    return out


def sync_files(paths: list[str], reference: str | None = None) -> list[SyncResult]:
    """Every file placed on the reference's timeline (default reference: the longest recording that shares sound
    with another), directly or through other clips it shares sound with; the rest reported unsynced, files
    that cannot be read among them (with why)."""
    if len(paths) < 2:
        raise decode.SyncInputError("give at least two files to sync")
    if reference is not None and reference not in paths:
        raise decode.SyncInputError(f"{reference}: the reference is not one of the files to sync")
    # a file that cannot be read (no audio, corrupt, vanished) is reported unsynced; the others still sync
    bad: dict[str, str] = {}
    good: list[str] = []
    infos, onsets, lengths = [], [], []
    for p in paths:
        if p in bad or p in good:
            continue
        try:
            inf = decode.info(p)
            env = decode.envelope(p)
        except (decode.SyncInputError, OSError, ValueError, av.error.FFmpegError) as exc:
            if p == reference:
                raise
            bad[p] = (str(exc) if isinstance(exc, decode.SyncInputError) else
                      f"{os.path.basename(p)}: cannot read its audio ({exc})")
            continue
        good.append(p)
        infos.append(inf)
        lengths.append(len(env) / ENV_RATE)
        onsets.append(onset_envelope(env))   # only the onsets stay (float32, 200 x 6 per second: 35 MB for 2 h)
        del env
    if len(good) < 2:   # nothing to sync against: the first file that failed is the error
        raise decode.SyncInputError(next(iter(bad.values())) if bad else "give at least two files to sync")
    results = _sync_readable(good, reference, infos, onsets, lengths)
    ref_path = results[0].path
    for p in bad:
        results.append(SyncResult(path=p, reference=ref_path, status="unsynced", reason=bad[p]))
    order = {p: i for i, p in reversed(list(enumerate(paths)))}
    return [results[0], *sorted(results[1:], key=lambda r: order[r.path])]


def _sync_readable(paths: list[str], reference: str | None, infos: list[decode.AudioInfo],
                   onsets: list[np.ndarray], lengths: list[float]) -> list[SyncResult]:
    """`sync_files` on the files that could be decoded (their infos, onset envelopes and lengths given)."""
    n = len(paths)
    coarse = {(i, j): coarse_candidates(onsets[i], onsets[j]) for i in range(n) for j in range(i + 1, n)}
    del onsets
    if reference in paths:
        ref = paths.index(reference)
    else:
        # the longest recording that shares sound with another: a long take with a dead or unplugged microphone
        # (silence, hiss) would otherwise be the reference, and every other clip unsynced against it
        shares = {k for (i, j), cands in coarse.items() if cands[0][1] >= MIN_CONFIDENCE for k in (i, j)}
        ref = max(range(n), key=lambda i: (i in shares, infos[i].duration))
    direct: dict[int, SyncResult] = {}

    def verify(a: int, b: int, co: tuple[float, float]) -> SyncResult:
        res = sync_pair(paths[a], paths[b], coarse=co, lengths=(lengths[a], lengths[b]), ref_info=infos[a],
                        other_info=infos[b])
        if a == ref:
            direct[b] = res
        return res

    placed, why = place_group(n, ref, coarse, lengths, verify, names=list(paths))
    out = [SyncResult(path=paths[ref], reference=paths[ref], status="reference", offset_seconds=0.0,
                      offset_samples=0, offset_frames=0.0 if infos[ref].video_fps else None)]
    for i, p in enumerate(paths):
        if i == ref or os.path.abspath(p) == os.path.abspath(paths[ref]):
            continue
        if i not in placed:
            res = direct.get(i) or SyncResult(path=p, reference=paths[ref], status="unsynced")
            if i not in direct:  # never verified against the reference: its coarse confidence was too low
                a, b = (ref, i) if ref < i else (i, ref)
                res.confidence = round(coarse[(a, b)][0][1], 2)
            res.reference, res.status = paths[ref], "unsynced"
            res.offset_seconds = res.offset_samples = res.offset_frames = res.drift_ppm = None
            reason = why.get(i, "")
            if not reason.startswith(("conflicting", "ambiguous")):
                base = (direct[i].reason if i in direct else
                        f"no shared sound found (confidence {res.confidence:.1f} < {MIN_CONFIDENCE:g})")
                reason = base + ("; no other clip shares sound with it either" if n > 2 else "")
            res.reason = reason
            out.append(res)
            continue
        pl = placed[i]
        res = pl.result
        res.path, res.reference, res.status = p, paths[ref], "synced"
        res.via = None if pl.parent == ref else paths[pl.parent]  # type: ignore[index]
        res.confidence = round(pl.confidence, 2)   # the weakest link on its path
        # the placements are of the audio streams; a video file starts where its video does (its audio may start
        # a few frames before or after): the clip's start, on the reference's timeline from the reference's start
        offset = pl.offset - pl.scale * infos[i].lead + infos[ref].lead
        res.offset_seconds = round(offset, 6)
        res.offset_samples = round(offset * (infos[i].sample_rate or 16000))
        res.offset_frames = _frames(offset, infos[i].video_fps or infos[ref].video_fps)
        res.drift_ppm = round((1.0 - pl.scale) * 1e6, 2) if pl.drift_known else None
        out.append(res)
    return out


__all__ = ["Placement", "compose", "place_group", "sync_files"]
