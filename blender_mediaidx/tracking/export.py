"""Export a solved clip for matchmove and compositing tools: the camera as Nuke .chan, FBX and Alembic; 2D
tracks as 3DE points, CSV and JSON; lens/filmback and plate sidecars. Main thread only (bpy).

The camera is taken from the evaluated scene camera (Camera Solver constraint applied), frame by frame over
the plate's whole range, the last frame included; that is what a user sees in the viewport.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from ..core import track_formats as tf
from ..core.scene_setup import scene_rate
from ..core.sequences import numbered_sequence
from .plan import camera_files, safe

FORMATS = tf.FORMATS
# Blender's and libmv's: rows are scaled by 1 / pixel_aspect before the solve, so the one solved focal length
# is horizontal and the vertical one is pixel_aspect times it (both in the plate's stored pixels).
FOCAL_CONVENTION = ("pixels are the plate's stored pixels; focal_length_px is horizontal, focal_length_y_px = "
                    "focal_length_px x pixel_aspect; focal_length_mm = focal_length_px x sensor_width_mm / width "
                    "(the spherical lens that gives the de-squeezed picture on sensor_width_mm x sensor_height_mm; "
                    "an anamorphic lens on a sensor that wide is nominally focal_length_mm x pixel_aspect)")


@dataclass
class CameraExport:
    """What one camera's export wrote."""

    name: str
    camera: str
    clip: str
    first_frame: int
    last_frame: int
    files: dict[str, str] = field(default_factory=dict)
    lens: dict[str, Any] = field(default_factory=dict)
    plate: dict[str, Any] = field(default_factory=dict)
    solve: dict[str, Any] = field(default_factory=dict)
    # [first, last] scene-frame ranges inside the plate with no solved camera: the Camera Solver constraint
    # (and so every exported format) holds the nearest solved camera there, which is not a real solve.
    unsolved_frames: list[list[int]] = field(default_factory=list)


def solved_camera(scene: bpy.types.Scene, clip: bpy.types.MovieClip, name: str | None = None) -> bpy.types.Object:
    """A camera object driven by the clip's solve through a Camera Solver constraint, lens from the tracking
    camera (what `clip.setup_tracking_scene` does for the camera, without the compositing set-up)."""
    name = name or f"{clip.name}.camera"
    obj = bpy.data.objects.get(name)
    if obj is None or obj.type != "CAMERA":
        obj = bpy.data.objects.new(name, bpy.data.cameras.new(name))
        scene.collection.objects.link(obj)
    con = next((c for c in obj.constraints if c.type == "CAMERA_SOLVER"), None) or obj.constraints.new("CAMERA_SOLVER")
    con.use_active_clip = False
    con.clip = clip
    tcam = clip.tracking.camera
    cam = obj.data
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = tcam.sensor_width
    # Unused by Blender with a horizontal fit, but FBX (FilmHeight) and Alembic (vertical aperture) write it.
    cam.sensor_height = sensor_height_mm(clip)
    cam.lens = tcam.focal_length
    w, h = clip.size
    px, py = tcam.principal_point_pixels
    # Blender normalises both shifts by the width (the fitted side), a row being 1 / pixel_aspect of a column;
    # a principal point right of / above the centre is a negative shift (BKE_tracking_camera_shift_get).
    cam.shift_x = (w / 2 - px) / w
    cam.shift_y = (h / 2 - py) / (w * tcam.pixel_aspect)
    return obj


def sensor_height_mm(clip: bpy.types.MovieClip) -> float:
    """The filmback height that covers the plate's rows (plan.filmback: the dry run names the .chan with it)."""
    cam = clip.tracking.camera
    w, h = clip.size
    return cam.sensor_width * h / (w * cam.pixel_aspect)


def set_pixel_aspect(scene: bpy.types.Scene, pixel_aspect: float) -> None:
    """The scene shows the plate's pixels as the solve saw them (what Blender's Setup Tracking Scene does;
    each of the render's x and y aspects is at least 1), so the viewport, FBX and Alembic camera match it."""
    r = scene.render
    r.pixel_aspect_x, r.pixel_aspect_y = (pixel_aspect, 1.0) if pixel_aspect >= 1 else (1.0, 1.0 / pixel_aspect)


def camera_matrices(scene: bpy.types.Scene, obj: bpy.types.Object, first: int, last: int) -> list[tuple[int, np.ndarray]]:
    out = []
    current = scene.frame_current
    for f in range(first, last + 1):
        scene.frame_set(f)
        out.append((f, np.array(obj.matrix_world, dtype=float)))
    scene.frame_set(current)
    return out


def unsolved_ranges(solved: set[int], first: int, last: int) -> list[list[int]]:
    """[first, last] runs of the frames first..last that are not in ``solved``."""
    runs: list[list[int]] = []
    for f in range(first, last + 1):
        if f in solved:
            continue
        if runs and runs[-1][1] == f - 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    return runs


def lens_info(clip: bpy.types.MovieClip) -> dict[str, Any]:
    cam = clip.tracking.camera
    w, h = clip.size
    model = cam.distortion_model
    coeffs = {
        "POLYNOMIAL": {"k1": cam.k1, "k2": cam.k2, "k3": cam.k3},
        "DIVISION": {"k1": cam.division_k1, "k2": cam.division_k2},
        "NUKE": {"k1": cam.nuke_k1, "k2": cam.nuke_k2},
        "BROWN": {"k1": cam.brown_k1, "k2": cam.brown_k2, "k3": cam.brown_k3, "k4": cam.brown_k4,
                  "p1": cam.brown_p1, "p2": cam.brown_p2},
    }.get(model, {})
    sensor_h = sensor_height_mm(clip)
    return {
        "sensor_width_mm": cam.sensor_width, "sensor_height_mm": sensor_h,
        "focal_length_mm": cam.focal_length, "focal_length_px": cam.focal_length_pixels,
        "focal_length_y_px": cam.focal_length_pixels * cam.pixel_aspect,
        "principal_point_px": list(cam.principal_point_pixels), "pixel_aspect": cam.pixel_aspect,
        "width": w, "height": h, "display_width": w * cam.pixel_aspect,
        "focal_convention": FOCAL_CONVENTION,
        "hfov_deg": math.degrees(2 * math.atan2(cam.sensor_width / 2, cam.focal_length)),
        "vfov_deg": tf.vertical_fov_deg(cam.focal_length, cam.sensor_width, w, h, cam.pixel_aspect),
        "distortion": {"model": model.lower(), "coefficients": coeffs,
                       "convention": "Blender/libmv, normalised by the focal length in pixels"},
    }


def plate_info(clip: bpy.types.MovieClip, scene: bpy.types.Scene) -> dict[str, Any]:
    first = clip.frame_start
    last = clip.frame_start + clip.frame_duration - 1
    path = bpy.path.abspath(clip.filepath)
    # Blender reads every numbered sibling as a frame, whatever the naming (a timelapse IMG_0001.JPG.. too).
    seq = numbered_sequence(path) if clip.source == "SEQUENCE" else None
    pattern = seq.hash_pattern if seq is not None else path
    fps = scene_rate(scene.render.fps, scene.render.fps_base)
    return {
        "path": pattern, "source": clip.source.lower(), "first_frame": first, "last_frame": last,
        "fps": f"{fps.numerator}/{fps.denominator}", "fps_float": float(fps),
        "width": clip.size[0], "height": clip.size[1], "pixel_aspect": clip.tracking.camera.pixel_aspect,
        "colorspace": clip.colorspace_settings.name,
    }


def tracks_2d(clip: bpy.types.MovieClip) -> tuple[list[tf.Track2D], dict[str, float], dict[str, list[float]]]:
    """Unmuted markers per track in pixels (origin lower-left) and scene frames; errors and bundles."""
    w, h = clip.size
    tracks, errors, bundles = [], {}, {}
    offset = clip.frame_start - 1
    for t in clip.tracking.objects.active.tracks:
        markers = [(m.frame + offset, m.co[0] * w, m.co[1] * h) for m in t.markers if not m.mute]
        if not markers:
            continue
        markers.sort()
        tracks.append((t.name, markers))
        if t.has_bundle:
            errors[t.name] = float(t.average_error)
            bundles[t.name] = list(t.bundle)
    return tracks, errors, bundles


def export_camera(scene: bpy.types.Scene, clip: bpy.types.MovieClip, out: Path, *, name: str | None = None,
                  formats: tuple[str, ...] = FORMATS, transform: np.ndarray | None = None) -> CameraExport:
    """Write one camera's files into `out`. `transform` (4x4, a similarity) moves a witness into the hero's
    space before writing."""
    rec = clip.tracking.objects.active.reconstruction
    if not rec.is_valid:
        raise ValueError(f"{clip.name}: not solved; track it first")
    out.mkdir(parents=True, exist_ok=True)
    name = safe(name or os.path.splitext(clip.name)[0])
    obj = solved_camera(scene, clip, f"{name}.camera")
    if transform is not None:
        _parent_to_transform(scene, obj, transform, name)
    first = clip.frame_start
    last = clip.frame_start + clip.frame_duration - 1
    result = CameraExport(name=name, camera=obj.name, clip=clip.name, first_frame=first, last_frame=last)
    result.lens = lens_info(clip)
    result.plate = plate_info(clip, scene)
    result.solve = {"average_error_px": float(rec.average_error), "solved_frames": len(rec.cameras),
                    "tracks": len(clip.tracking.objects.active.tracks)}
    result.unsolved_frames = unsolved_ranges({c.frame + clip.frame_start - 1 for c in rec.cameras}, first, last)
    mats = camera_matrices(scene, obj, first, last)
    files = result.files
    # The names come from plan.camera_files, which `mediaidx track --dry-run` lists before any solve.
    names = camera_files(name, result.lens["sensor_width_mm"], result.lens["sensor_height_mm"], tuple(formats))
    if "chan" in formats:
        tf.write_chan(out / names["chan"], mats, result.lens["vfov_deg"])
        files["chan"] = names["chan"]
    tracks, errors, bundles = tracks_2d(clip)
    if "3de" in formats:
        tf.write_3de_points(out / names["3de"], tracks)
        files["3de"] = names["3de"]
    if "csv" in formats:
        tf.write_tracks_csv(out / names["csv"], tracks, *clip.size)
        files["csv"] = names["csv"]
    if "json" in formats:
        tf.write_json(out / names["json"], tf.tracks_document(tracks, *clip.size, errors, bundles))
        files["json"] = names["json"]
    for kind, doc in (("lens", result.lens), ("plate", result.plate)):
        tf.write_json(out / names[kind], doc)
        files[kind] = names[kind]
    if "fbx" in formats or "abc" in formats:
        baked = _baked_copy(scene, obj, mats, name)
        r = scene.render
        old = r.resolution_x, r.resolution_y, r.pixel_aspect_x, r.pixel_aspect_y
        # FBX takes the picture size and pixel aspect from the scene: this camera's plate, not the hero's.
        r.resolution_x, r.resolution_y = clip.size
        set_pixel_aspect(scene, clip.tracking.camera.pixel_aspect)
        try:
            if "fbx" in formats:
                files["fbx"] = _export_fbx(scene, baked, out / names["fbx"], first, last)
            if "abc" in formats:
                files["abc"] = _export_abc(scene, baked, out / names["abc"], first, last)
        finally:
            r.resolution_x, r.resolution_y, r.pixel_aspect_x, r.pixel_aspect_y = old
            data = baked.data
            bpy.data.objects.remove(baked)
            bpy.data.cameras.remove(data)
    return result


def _parent_to_transform(scene: bpy.types.Scene, obj: bpy.types.Object, transform: np.ndarray, name: str) -> None:
    """Carry a witness camera into the hero's space: an empty holding the similarity, parent of the camera.
    The camera's own matrix stays rigid; the empty's scale moves it, which is what a similarity means."""
    from mathutils import Matrix

    empty = bpy.data.objects.get(f"{name}.align") or bpy.data.objects.new(f"{name}.align", None)
    if empty.name not in scene.collection.objects:
        scene.collection.objects.link(empty)
    empty.matrix_world = Matrix(np.asarray(transform).tolist())
    obj.parent = empty


def _baked_copy(scene: bpy.types.Scene, obj: bpy.types.Object, mats: list[tuple[int, np.ndarray]],
                name: str) -> bpy.types.Object:
    """A constraint-free camera keyed on every frame with the evaluated (rigid) world matrix: FBX and
    Alembic then carry exactly what the .chan carries. Scale from a witness alignment is removed."""
    from mathutils import Matrix

    data = obj.data.copy()
    baked = bpy.data.objects.new(f"{name}.export", data)
    scene.collection.objects.link(baked)
    baked.rotation_mode = "XYZ"
    for f, m in mats:
        rigid = m.copy()
        rigid[:3, :3] = m[:3, :3] / np.linalg.norm(m[:3, :3], axis=0)
        baked.matrix_world = Matrix(rigid.tolist())
        baked.keyframe_insert("location", frame=f)
        baked.keyframe_insert("rotation_euler", frame=f)
    _unwrap_euler(baked)
    return baked


def _unwrap_euler(obj: bpy.types.Object) -> None:
    """Consecutive keys as close as possible (no 360-degree jumps), so interpolation between frames is sane."""
    from bpy_extras import anim_utils

    ad = obj.animation_data
    bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
    for fc in bag.fcurves:
        if fc.data_path == "rotation_euler":
            prev = None
            for kp in fc.keyframe_points:
                if prev is not None:
                    kp.co[1] += round((prev - kp.co[1]) / (2 * math.pi)) * 2 * math.pi
                prev = kp.co[1]
            fc.update()


def _select_only(scene: bpy.types.Scene, obj: bpy.types.Object) -> None:
    for o in scene.objects:
        o.select_set(o == obj)
    bpy.context.view_layer.objects.active = obj


def _export_fbx(scene: bpy.types.Scene, obj: bpy.types.Object, path: Path, first: int, last: int) -> str:
    _select_only(scene, obj)
    old = scene.frame_start, scene.frame_end
    scene.frame_start, scene.frame_end = first, last
    try:
        bpy.ops.export_scene.fbx(filepath=str(path), use_selection=True, object_types={"CAMERA"}, bake_anim=True,
                                 bake_anim_use_all_actions=False, bake_anim_use_nla_strips=False,
                                 bake_anim_simplify_factor=0.0, bake_anim_step=1.0, add_leaf_bones=False)
    finally:
        scene.frame_start, scene.frame_end = old
    return path.name


def _export_abc(scene: bpy.types.Scene, obj: bpy.types.Object, path: Path, first: int, last: int) -> str:
    _select_only(scene, obj)
    bpy.ops.wm.alembic_export(filepath=str(path), selected=True, start=first, end=last, flatten=True,
                              as_background_job=False)
    return path.name
