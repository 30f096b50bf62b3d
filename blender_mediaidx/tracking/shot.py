"""A hero + witness shot, end to end: load each plate, solve each camera, align witnesses to the hero in time
(sync offsets) and in space (survey points), export everything and write the `shot.json` manifest
(docs/tracking.md has its schema). The operator, the batch job and `mediaidx track` all call `track_shot`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from ..core.scene_setup import blender_fps, parse_rate, scene_rate
from ..core.similarity import apply_similarity, similarity_matrix, similarity_transform
from . import export, solver
from .plan import (
    SHOT_MANIFEST,
    SHOT_SCHEMA,
    blender_pixel_aspect,
    clip_first_image,
    clip_frame_start,
    pixel_aspect_from_probe,
)
from .solver import SURVEY_PREFIX, is_survey

SCHEMA = SHOT_SCHEMA
CONVENTIONS = {
    "world": "Blender: Z up; units of the hero's solve (arbitrary scale, no survey distances applied)",
    "camera": "looks down local -Z, local +Y up; exported matrices are rigid (no scale)",
    "chan": "Y up (Nuke), rotation order ZXY, degrees, last column the vertical field of view",
    "pixels": "origin at the lower-left corner of the lower-left pixel, +0.5 at a pixel centre, y up; the "
              "plate's stored pixels (an anamorphic plate's are not de-squeezed: see each lens's pixel_aspect)",
    "frames": "scene frames on the hero's timeline; a witness's first image sits at the hero's first frame "
              "+ offset_frames",
}


@dataclass
class CameraSpec:
    path: str
    role: str = "witness"                # "hero" or "witness"
    name: str | None = None
    offset_frames: float = 0.0           # this camera's first image is at hero first frame + offset
    sync_source: str = "given"           # given | timecode | audio
    focal_px: float | None = None        # a known focal length; otherwise a guess the solver refines
    sensor_width_mm: float | None = None
    pixel_aspect: float | None = None    # width / height of a stored pixel on screen; None (or 0): from the probe


@dataclass
class ShotSpec:
    hero: CameraSpec
    witnesses: list[CameraSpec] = field(default_factory=list)
    # name -> camera name, clip name, role or file name -> [[frame, x_px, y_px], ...]: frames counted in
    # the clip (1 = its first image), pixels with the origin lower-left
    survey: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    fps: str | None = None               # "24000/1001"; default: the hero's from its probe, else 24
    refine: str = "FOCAL"
    name: str = "shot"


def load_clip(spec: CameraSpec) -> bpy.types.MovieClip:
    """The plate as a movie clip: an image sequence from its first image, whichever of its frames was given
    (frame_start is that image's number, so scene frames, plate.json and the cameras agree with the files)."""
    if not os.path.exists(spec.path):
        raise solver.TrackingError(f"{spec.path}: no such plate")
    # Blender reads the numbered images from the one it loads up to the first gap; the plan
    # (plan.clip_first_image) starts there too: the first image of the run the given frame is in.
    path = clip_first_image(spec.path)
    try:
        clip = bpy.data.movieclips.load(path)
    except RuntimeError as exc:
        raise solver.TrackingError(f"{os.path.basename(spec.path)}: Blender cannot read it ({exc})") from None
    if clip.size[0] == 0 or clip.frame_duration <= 1:
        raise solver.TrackingError(f"{os.path.basename(spec.path)}: no frames to track")
    # Only an image sequence starts at its own first number: a movie named take5.mov beside take6.mov is not one.
    # Blender reads every numbered sibling as a frame, whatever the naming (a timelapse IMG_0001.JPG.. too).
    # After a gap, that is the loaded image's number, not the sequence's first (plate.0010 of 0001-0003, 0010-0013).
    clip.frame_start = clip_frame_start(path) if clip.source == "SEQUENCE" else 1
    # Blender does not read the pixel aspect from the file: without it an anamorphic plate is solved as if its
    # pixels were square (focal length, filmback and every exported camera off by the squeeze).
    pa = spec.pixel_aspect or plate_pixel_aspect(path)  # given by hand (--pixel-aspect) wins
    clip.tracking.camera.pixel_aspect = blender_pixel_aspect(pa)
    return clip


def plate_pixel_aspect(path: str) -> float:
    """A plate's pixel aspect from the bridge's probe (what `mediaidx track --dry-run` reads too); 1 where
    the probe is not importable (a Blender without the bridge's packages) or cannot read the file."""
    try:
        from bridge.errors import ProbeError
        from bridge.probe import probe_file
    except ImportError:
        return 1.0
    try:
        return pixel_aspect_from_probe(probe_file(path))
    except (ProbeError, OSError):  # Blender read the plate: a probe that cannot is no reason to stop
        return 1.0


def add_survey_tracks(clip: bpy.types.MovieClip, survey: dict[str, dict[str, list[list[float]]]],
                      keys: tuple[str, ...]) -> int:
    """User-marked survey points as locked tracks named survey_<name>, so the solve gives them bundles."""
    w, h = clip.size
    n = 0
    tracks = clip.tracking.objects.active.tracks
    for name, per_clip in survey.items():
        markers = next((per_clip[k] for k in keys if k in per_clip), None)
        if not markers:
            continue
        track = tracks.get(SURVEY_PREFIX + name) or tracks.new(name=SURVEY_PREFIX + name, frame=int(markers[0][0]))
        for frame, x, y in markers:
            track.markers.insert_frame(int(frame), co=(x / w, y / h))
        track.lock = True
        n += 1
    return n


def survey_bundles(clip: bpy.types.MovieClip) -> dict[str, np.ndarray]:
    return {t.name[len(SURVEY_PREFIX):]: np.array(t.bundle) for t in clip.tracking.objects.active.tracks
            if is_survey(t) and t.has_bundle}


def align(hero: dict[str, np.ndarray], witness: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """The similarity taking the witness's solve into the hero's space, from shared survey points."""
    names = sorted(set(hero) & set(witness))
    if len(names) < 3:
        return None
    src = np.array([witness[n] for n in names])
    dst = np.array([hero[n] for n in names])
    s, r, t = similarity_transform(src, dst)
    residual = np.linalg.norm(apply_similarity(src, s, r, t) - dst, axis=1)
    return {"survey_points": names, "scale": s, "rotation": r.tolist(), "translation": t.tolist(),
            "matrix": similarity_matrix(s, r, t).tolist(), "rms_error": float(np.sqrt(np.mean(residual ** 2))),
            "max_error": float(residual.max())}


def _scene_fps(scene: bpy.types.Scene, fps: str | None) -> Fraction:
    rate = parse_rate(fps) if fps else None
    if rate is None:
        rate = scene_rate(scene.render.fps, scene.render.fps_base)
    scene.render.fps, scene.render.fps_base = blender_fps(rate)
    return rate


def track_shot(spec: ShotSpec, out: Path, *, formats: tuple[str, ...] = export.FORMATS,
               progress: solver.Progress | None = None) -> dict[str, Any]:
    """Solve and export every camera of the shot; returns the manifest (also written to out/shot.json)."""
    report = progress or (lambda f, m: None)
    scene = bpy.context.scene
    rate = _scene_fps(scene, spec.fps)
    cams = [spec.hero, *spec.witnesses]
    spec.hero.role = "hero"
    out.mkdir(parents=True, exist_ok=True)
    clips, solves = [], []
    for i, cam in enumerate(cams):
        clip = load_clip(cam)
        if i > 0:  # witnesses sit on the hero's timeline, shifted by their sync offset
            clip.frame_start = clips[0].frame_start + round(cam.offset_frames)
        add_survey_tracks(clip, spec.survey, (cam.name or "", clip.name, cam.role, os.path.basename(cam.path)))
        clips.append(clip)
        span = 0.9 / len(cams)
        res = solver.track_plate(
            clip, refine=spec.refine, focal_px=cam.focal_px, sensor_width_mm=cam.sensor_width_mm,
            progress=lambda f, m, i=i, span=span, c=clip: report(i * span + f * span, f"{c.name}: {m}"))
        solves.append(res)
        if not res.ok and i == 0:  # without the hero there is nothing to export or align to
            raise solver.TrackingError(f"{clip.name}: no solve ({res.reason})")
    hero_clip = clips[0]
    scene.frame_start = hero_clip.frame_start
    scene.frame_end = max(c.frame_start + c.frame_duration - 1 for c in clips)
    scene.render.resolution_x, scene.render.resolution_y = hero_clip.size
    export.set_pixel_aspect(scene, hero_clip.tracking.camera.pixel_aspect)
    scene.active_clip = hero_clip
    hero_bundles = survey_bundles(hero_clip)
    manifest = _base_manifest(spec.name, rate)
    for cam, clip, res in zip(cams, clips, solves, strict=True):
        entry: dict[str, Any] = {}
        transform = None
        if cam.role == "witness":
            offset = cam.offset_frames
            entry["sync"] = {"offset_frames": offset, "offset_seconds": float(Fraction(offset).limit_denominator(100000)
                                                                              / rate),
                             "source": cam.sync_source}
            if not res.ok:
                # A witness that did not solve costs the shot nothing else: the hero and the other witnesses
                # are still exported; this one is listed with its reasons and no files.
                manifest["cameras"].append({**_unsolved_entry(cam, clip, res.as_dict()), **entry,
                                            "alignment": None})
                continue
            alignment = align(hero_bundles, survey_bundles(clip))
            entry["alignment"] = alignment
            if alignment is not None:
                transform = np.array(alignment["matrix"])
        exp = export.export_camera(scene, clip, out, name=cam.name or os.path.splitext(clip.name)[0],
                                   formats=formats, transform=transform)
        manifest["cameras"].append({**_camera_entry(cam.role, clip, cam.path, res.as_dict(), exp), **entry})
    manifest["survey_points"] = _survey_points(hero_bundles)
    _write_manifest(out, manifest)
    report(1.0, "exported")
    return manifest


def _base_manifest(name: str, rate: Fraction) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "shot": name, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "fps": f"{rate.numerator}/{rate.denominator}",
        "conventions": CONVENTIONS,
        "cameras": [], "survey_points": [],
    }


def single_camera_manifest(scene: bpy.types.Scene, clip: bpy.types.MovieClip, exp: export.CameraExport,
                           out: Path) -> dict[str, Any]:
    """shot.json for one exported camera (the export operator), in the same schema as a full shot."""
    manifest = _base_manifest(exp.name, scene_rate(scene.render.fps, scene.render.fps_base))
    manifest["cameras"].append(_camera_entry("hero", clip, exp.plate.get("path"), exp.solve, exp))
    manifest["survey_points"] = _survey_points(survey_bundles(clip))
    _write_manifest(out, manifest)
    return manifest


def _camera_entry(role: str, clip: bpy.types.MovieClip, plate_path: str | None, solve: dict[str, Any],
                  exp: export.CameraExport) -> dict[str, Any]:
    """One camera in shot.json (a witness adds its sync and alignment)."""
    return {"role": role, "clip": clip.name, "plate_path": plate_path, "solve": solve, "name": exp.name,
            "camera_object": exp.camera, "first_frame": exp.first_frame, "last_frame": exp.last_frame,
            "unsolved_frames": exp.unsolved_frames, "files": exp.files, "lens": exp.lens, "plate": exp.plate}


def _unsolved_entry(cam: CameraSpec, clip: bpy.types.MovieClip, solve: dict[str, Any]) -> dict[str, Any]:
    """A camera in shot.json whose solve failed: where it sits and why it failed, no camera and no files."""
    first = clip.frame_start
    return {"role": cam.role, "clip": clip.name, "plate_path": cam.path, "solve": solve,
            "name": export.safe(cam.name or os.path.splitext(clip.name)[0]), "camera_object": None,
            "first_frame": first, "last_frame": first + clip.frame_duration - 1,
            "unsolved_frames": [[first, first + clip.frame_duration - 1]], "files": {}, "lens": {}, "plate": {}}


def _survey_points(hero_bundles: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return [{"name": n, "hero": b.tolist()} for n, b in sorted(hero_bundles.items())]


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    (out / SHOT_MANIFEST).write_text(json.dumps(manifest, indent=2, default=_jsonable) + "\n")


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if hasattr(v, "__dataclass_fields__"):
        return asdict(v)
    return str(v)
