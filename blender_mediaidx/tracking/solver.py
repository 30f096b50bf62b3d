"""Camera tracking on Blender's own tracker (libmv), headless or from the UI: detect, track both ways, clean,
solve, and retry with other settings when a solve is poor or fails.

Headless facts this relies on (verified on bpy 5.0.1): clip operators need a context override on an area
switched to CLIP_EDITOR whose space shows the clip, and the space's `clip_user.frame_current` must be set by
hand (it does not follow the scene frame without an event loop). Main thread only.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import bpy

Progress = Callable[[float, str], None]
SURVEY_PREFIX = "survey_"  # user-marked survey tracks: never cleared, cleaned or rejected by the solver


def is_survey(track: Any) -> bool:
    return track.name.startswith(SURVEY_PREFIX)


class TrackingError(Exception):
    """A solve that could not be made; the message says why, for the user."""


@dataclass(frozen=True)
class Strategy:
    """One attempt's settings. The first is tuned for ordinary footage; the rest widen what the tracker
    tolerates (denser features, bigger search areas for fast motion, a more flexible motion model for
    perspective change, other keyframes)."""

    name: str
    threshold: float = 0.005        # detect_features corner threshold (Blender's default 0.5 finds few)
    min_distance: int = 40          # px between detected features at 640 px wide (Blender: 120 at any size)
    margin: int = 16
    pattern_size: int = 15          # at 640 px wide; scaled with the plate (see _attempt)
    search_size: int = 51
    motion_model: str = "Loc"
    correlation_min: float = 0.75
    pattern_match: str = "KEYFRAME"
    keyframes: str = "widest"       # "widest" (pick_keyframes, then libmv's choice if poor), "auto" (libmv's
                                    # selection) or "a-b" fractions of the clip, e.g. "0.1-0.6"
    min_track_frames: int = 10
    reject_error_px: float = 2.0    # tracks above max(this / 4, 3 x the median track error) are dropped
    middle_pass: bool = False       # also detect on the middle frame and track both ways


STRATEGIES: tuple[Strategy, ...] = (
    Strategy("default"),
    Strategy("dense", threshold=0.001, min_distance=20, middle_pass=True, pattern_size=21, search_size=71),
    Strategy("fast-motion", search_size=151, pattern_size=25, threshold=0.002, min_distance=24),
    Strategy("perspective", motion_model="Affine", pattern_match="PREV_FRAME", threshold=0.002, min_distance=20),
    Strategy("keyframes-auto", keyframes="auto", threshold=0.002, min_distance=30, middle_pass=True),
    Strategy("keyframes-late", keyframes="0.4-0.95", threshold=0.002, min_distance=20),
)


@dataclass
class SolveResult:
    clip: str
    ok: bool
    strategy: str = ""
    error_px: float | None = None
    tracks: int = 0
    bundles: int = 0
    solved_frames: int = 0
    focal_px: float | None = None
    keyframes: tuple[int, int] | None = None
    seconds: float = 0.0
    reason: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def clip_editor(clip: bpy.types.MovieClip) -> Iterator[tuple[Any, Any]]:
    """An override context on a clip editor showing `clip`; restores the borrowed area afterwards."""
    ctx = bpy.context
    win = ctx.window or ctx.window_manager.windows[0]
    area = next((a for a in win.screen.areas if a.type == "CLIP_EDITOR"), None)
    old_type = None
    if area is None:
        area = max(win.screen.areas, key=lambda a: a.width * a.height)
        old_type = area.type
        area.type = "CLIP_EDITOR"
    space = area.spaces.active
    old_clip = space.clip
    space.clip = clip
    space.mode = "TRACKING"
    region = next((r for r in area.regions if r.type == "WINDOW"), None)
    try:
        with ctx.temp_override(window=win, area=area, region=region, space_data=space, edit_movieclip=clip):
            yield space, area
    finally:
        with contextlib.suppress(ReferenceError, TypeError):
            space.clip = old_clip
        if old_type is not None:
            area.type = old_type


def _set_frame(space: Any, clip: bpy.types.MovieClip, clip_frame: int) -> None:
    """Headless, the clip user does not follow the scene: set the frame by hand (scene frame numbers)."""
    space.clip_user.frame_current = clip_frame + clip.frame_start - 1


def _delete(clip: bpy.types.MovieClip, predicate: Callable[[Any], bool]) -> int:
    """Delete the tracks `predicate` picks (the RNA collection has no remove(); the operator does it)."""
    n = _select_only(clip, predicate)
    if n:
        bpy.ops.clip.delete_track(confirm=False)
    return n


def _clear(clip: bpy.types.MovieClip) -> None:
    _delete(clip, lambda t: not is_survey(t))


def _select_only(clip: bpy.types.MovieClip, predicate: Callable[[Any], bool]) -> int:
    n = 0
    for t in clip.tracking.objects.active.tracks:
        t.select = bool(predicate(t))
        n += t.select
    return n


def _track_segment_frames(track: Any) -> int:
    return sum(1 for m in track.markers if not m.mute)


def pick_keyframes(clip: bpy.types.MovieClip, min_common: int = 24) -> tuple[int, int] | None:
    """The widest pair of frames that still share enough tracks: the longest baseline gives the most
    parallax for the initial reconstruction. Costs a pass over the markers, against the many trial
    reconstructions of libmv's keyframe selection. A fallback: libmv's choice solves better on most plates."""
    n = clip.frame_duration
    spans = []
    for t in clip.tracking.objects.active.tracks:
        frames = [m.frame for m in t.markers if not m.mute]
        if frames:
            spans.append((min(frames), max(frames)))
    if not spans:
        return None
    step = max(1, n // 24)
    best: tuple[int, int, int] | None = None
    for a in range(1, max(2, n // 3), step):
        for b in range(n, a + 7, -step):
            common = sum(1 for lo, hi in spans if lo <= a and hi >= b)
            if common >= min_common:
                if best is None or b - a > best[1] - best[0]:
                    best = (a, b, common)
                break
    return (best[0], best[1]) if best else None


def _keyframes(clip: bpy.types.MovieClip, spec: str) -> tuple[int, int] | None:
    if spec == "auto":
        return None
    if spec == "widest":
        return pick_keyframes(clip)
    a, b = (float(x) for x in spec.split("-"))
    n = clip.frame_duration
    ka, kb = max(1, round(1 + a * (n - 1))), min(n, round(1 + b * (n - 1)))
    return (ka, kb) if kb - ka >= 5 else None


def prepare_camera(clip: bpy.types.MovieClip, *, focal_px: float | None = None, sensor_width_mm: float | None = None,
                   principal_px: tuple[float, float] | None = None) -> None:
    """Seed the tracking camera. Without a known focal length, 35 mm on a 36 mm back (a normal lens) is the
    guess and the solver refines it."""
    cam = clip.tracking.camera
    if sensor_width_mm:
        cam.sensor_width = sensor_width_mm
    cam.units = "PIXELS"
    cam.focal_length_pixels = focal_px or clip.size[0] * 35.0 / 36.0
    if principal_px is not None:
        cam.principal_point_pixels = principal_px


def _attempt(clip: bpy.types.MovieClip, space: Any, st: Strategy, refine: str, report: Progress,
             base: float, span: float, good_error_px: float = 0.3) -> tuple[float | None, str]:
    """One detect-track-clean-solve pass; returns (average error or None, failure reason)."""
    tracking = clip.tracking
    settings = tracking.settings
    # Sizes are tuned at 640 px wide; a larger plate moves more pixels per frame and would get far more
    # features (time) for no gain: scale spacing and search area with the width, the pattern more gently.
    k = max(1.0, clip.size[0] / 640)
    min_distance = round(st.min_distance * k ** 1.3)  # fewer, costlier tracks on big plates
    settings.default_pattern_size = min(round(st.pattern_size * k ** 0.5) | 1, 101)
    settings.default_search_size = min(round(st.search_size * k ** 0.6), 300)
    settings.default_motion_model = st.motion_model
    settings.default_correlation_min = st.correlation_min
    settings.default_pattern_match = st.pattern_match
    settings.default_margin = st.margin
    settings.refine_intrinsics_focal_length = "FOCAL" in refine
    settings.refine_intrinsics_principal_point = "PRINCIPAL" in refine
    settings.refine_intrinsics_radial_distortion = "RADIAL" in refine
    _clear(clip)
    n = clip.frame_duration
    # Features from the first frame tracked forwards, from the last tracked backwards (and, for some strategies,
    # from the middle both ways): points that enter the frame late or leave early still get long tracks.
    passes = [(1, (False,)), (n, (True,))]
    if st.middle_pass:
        passes.append(((n + 1) // 2, (False, True)))
    for start, directions in passes:
        before = {t.name for t in tracking.tracks}
        _set_frame(space, clip, start)
        _select_only(clip, lambda t: False)
        bpy.ops.clip.detect_features(placement="FRAME", margin=st.margin, threshold=st.threshold,
                                     min_distance=min_distance)
        for backwards in directions:
            _set_frame(space, clip, start)
            if not _select_only(clip, lambda t, b=before: t.name not in b):
                break
            bpy.ops.clip.track_markers(backwards=backwards, sequence=True)
        report(base + span * (0.2 + 0.2 * [p[0] for p in passes].index(start)), f"{st.name}: tracked from frame {start}")
    # Short tracks carry no parallax and hurt the solve.
    shortest = min(st.min_track_frames, n // 2)
    _delete(clip, lambda t: not is_survey(t) and _track_segment_frames(t) < shortest)
    obj = tracking.objects.active
    keys = _keyframes(clip, st.keyframes)
    error = _solve_clean(clip, st, keys)
    if (error is None or error > good_error_px) and keys is not None:
        # The cheap keyframe pick was not good enough: let libmv choose on the same tracks (no re-tracking),
        # and keep whichever solve is better.
        first = (error, obj.keyframe_a, obj.keyframe_b)
        error = _solve_clean(clip, st, None)
        if first[0] is not None and (error is None or first[0] < error):
            error = _solve_clean(clip, st, (first[1], first[2]))
    if error is None:
        return None, _why_failed(clip)
    report(base + span, f"{st.name}: solved, {error:.3f} px")
    return error, ""


def _solve_clean(clip: bpy.types.MovieClip, st: Strategy, keys: tuple[int, int] | None) -> float | None:
    """Solve on the given keyframes (None: libmv's selection), then reject outliers (tracks whose reprojection
    error stands out: a slipped tracker, a feature on an occlusion edge) and solve again; at most twice."""
    tracking = clip.tracking
    settings = tracking.settings
    obj = tracking.objects.active
    settings.use_keyframe_selection = keys is None
    if keys:
        obj.keyframe_a, obj.keyframe_b = keys
    error = _solve(clip)
    if error is None:
        return None
    settings.use_keyframe_selection = False  # later solves keep the keyframes found
    for _ in range(2):
        errors = sorted(t.average_error for t in tracking.tracks if t.has_bundle)
        if not errors:
            break
        limit = max(st.reject_error_px * 0.25, 3.0 * errors[len(errors) // 2])

        def is_bad(t: Any, limit: float = limit) -> bool:
            return t.has_bundle and t.average_error > limit and not is_survey(t)

        bad = sum(1 for t in tracking.tracks if is_bad(t))
        if not bad or bad > 0.3 * len(errors):
            break
        _delete(clip, is_bad)
        again = _solve(clip)
        if again is None:
            break
        error = again
    return error


def _solve(clip: bpy.types.MovieClip) -> float | None:
    # solve_camera makes the solved clip the scene's active clip, but when another clip is active it takes a
    # user off the solved clip instead of the old one (Blender 5.0.1 solve_camera_freejob): "ID user count
    # error: MC<clip>" on a second clip, and a stale user left on the first. Made active here first (a
    # refcounted RNA set), the operator's decrement and increment fall on the same clip and balance.
    scene = bpy.context.scene
    if scene.active_clip != clip:
        scene.active_clip = clip
    try:
        bpy.ops.clip.solve_camera()
    except RuntimeError as exc:
        clip["mediaidx_solve_error"] = str(exc).replace("Error: ", "").strip()
        return None
    rec = clip.tracking.objects.active.reconstruction
    if not rec.is_valid:
        clip["mediaidx_solve_error"] = "the solver found no valid reconstruction"
        return None
    return float(rec.average_error)


def _why_failed(clip: bpy.types.MovieClip) -> str:
    msg = str(clip.get("mediaidx_solve_error", "")) or "the solve failed"
    obj = clip.tracking.objects.active
    tracks = len(obj.tracks)
    if tracks < 8:
        return (f"too few tracks: {tracks} survived tracking and cleaning, 8 common to both keyframes are needed "
                f"(a featureless, blurred or very short plate?); the solver said: {msg}")
    if "common tracks" in msg:
        return f"too few common tracks: {msg} (keyframes {obj.keyframe_a} and {obj.keyframe_b}; {tracks} tracks)"
    return f"{msg} ({tracks} tracks)"


def track_plate(clip: bpy.types.MovieClip, *, strategies: tuple[Strategy, ...] = STRATEGIES,
                good_error_px: float = 0.3, refine: str = "FOCAL", focal_px: float | None = None,
                sensor_width_mm: float | None = None, progress: Progress | None = None) -> SolveResult:
    """Track and solve `clip`, keeping the best of up to len(strategies) attempts. Stops at the first solve
    under `good_error_px`. `refine` lists intrinsics to refine: "", "FOCAL", "FOCAL+PRINCIPAL+RADIAL"."""
    report = progress or (lambda f, m: None)
    started = time.perf_counter()
    prepare_camera(clip, focal_px=focal_px, sensor_width_mm=sensor_width_mm)
    seed_focal = clip.tracking.camera.focal_length_pixels
    result = SolveResult(clip=clip.name, ok=False)
    best: tuple[float, Strategy] | None = None
    span = 1.0 / len(strategies)
    with clip_editor(clip) as (space, _area):
        for i, st in enumerate(strategies):
            clip.tracking.camera.focal_length_pixels = seed_focal
            error, reason = _attempt(clip, space, st, refine, report, i * span, span, good_error_px)
            result.attempts.append({"strategy": st.name, "error_px": error, "reason": reason,
                                    "tracks": len(clip.tracking.tracks)})
            if error is not None and (best is None or error < best[0]):
                best = (error, st)
            if error is not None and error <= good_error_px:
                break
        if best is not None and best[1] is not st:
            # The last attempt was not the best: redo the best so the clip holds its tracks and solve.
            clip.tracking.camera.focal_length_pixels = seed_focal
            _attempt(clip, space, best[1], refine, report, 0.95, 0.05, good_error_px)
    result.seconds = time.perf_counter() - started
    rec = clip.tracking.objects.active.reconstruction
    if best is None or not rec.is_valid:
        result.reason = "; ".join(f"{a['strategy']}: {a['reason']}" for a in result.attempts)
        report(1.0, "no solve")
        return result
    obj = clip.tracking.objects.active
    result.ok = True
    result.strategy = best[1].name
    result.error_px = float(rec.average_error)
    result.tracks = len(obj.tracks)
    result.bundles = sum(1 for t in obj.tracks if t.has_bundle)
    result.solved_frames = len(rec.cameras)
    result.focal_px = float(clip.tracking.camera.focal_length_pixels)
    result.keyframes = (obj.keyframe_a, obj.keyframe_b)
    report(1.0, f"solved with {result.strategy}: {result.error_px:.3f} px")
    return result


def default_pipeline(clip: bpy.types.MovieClip) -> SolveResult:
    """Blender's out-of-the-box pipeline (the benchmark's anchor): detect_features with its defaults,
    track_markers forwards, solve_camera with the default keyframes."""
    started = time.perf_counter()
    result = SolveResult(clip=clip.name, ok=False, strategy="blender-default")
    with clip_editor(clip) as (space, _area):
        _set_frame(space, clip, 1)
        bpy.ops.clip.detect_features()
        _select_only(clip, lambda t: True)
        bpy.ops.clip.track_markers(backwards=False, sequence=True)
        error = _solve(clip)
        if error is None:
            result.reason = _why_failed(clip)
    result.seconds = time.perf_counter() - started
    rec = clip.tracking.reconstruction
    result.tracks = len(clip.tracking.tracks)
    if error is not None:
        result.ok, result.error_px, result.solved_frames = True, error, len(rec.cameras)
        result.bundles = sum(1 for t in clip.tracking.tracks if t.has_bundle)
        result.focal_px = float(clip.tracking.camera.focal_length_pixels)
    return result
