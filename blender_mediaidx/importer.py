"""Plate import into a scene: movie clip, camera background, sequencer strip, image plane.

Used by the import operator, pushed shots and headless batch jobs alike. Main thread only (bpy).
The scene takes the plate's exact frame rate, frame range and resolution from the bridge's probe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import bpy

from .core.scene_setup import PlateSettings, pick_colorspace, plate_settings
from .core.sequences import (
    SEQUENCE_CHOICES,
    ImageSequence,
    SequenceChoiceError,
    clip_frame_count,
    find_sequence,
    numbered_sequence,
)
from .tracking.plan import IMAGE_EXTS  # bpy-free: the tracking worker and `mediaidx track` share the list

MODES = ("clip", "camera-bg", "strip", "plane")
# IMAGE_EXTS: still-image formats Blender reads; only these can make numbered siblings an image sequence
# (take5.mov beside take6.mov is two movies, not a two-frame sequence); core.sequences.find_sequence decides.


class PlateImportError(Exception):
    """A plate that cannot be imported; the message is for the user."""


@dataclass
class ImportResult:
    mode: str
    name: str
    settings: PlateSettings
    created: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # imported, but not all of it as asked (shown to the user)
    notes: list[str] = field(default_factory=list)  # imported as asked; what else the user could have chosen


def readable(path: str | None) -> bool:
    return bool(path) and os.path.isfile(path) and os.access(path, os.R_OK)  # type: ignore[arg-type]


def check_sequence_choice(choice: str) -> None:
    if choice not in SEQUENCE_CHOICES:
        raise PlateImportError(f"unknown sequence choice {choice!r} (use {', '.join(SEQUENCE_CHOICES)})")


def image_sequence(path: str, choice: str = "auto") -> ImageSequence | None:
    """``find_sequence`` with its refusal as a PlateImportError (shown to the user as one line)."""
    check_sequence_choice(choice)
    try:
        return find_sequence(path, choice)
    except SequenceChoiceError as exc:
        raise PlateImportError(str(exc)) from None


def local_asset(path: str, sequence: str = "auto") -> dict[str, Any]:
    """An asset dict for a file on this machine, probed here when the bridge's probe is importable.
    ``sequence`` (auto, single, sequence) says whether a numbered still is one image or its whole sequence."""
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    check_sequence_choice(sequence)
    # A movie is a movie whatever the choice (take5.mov beside take6.mov): it applies to still images.
    seq = image_sequence(path, sequence) if ext in IMAGE_EXTS and os.path.isfile(path) else None
    asset: dict[str, Any] = {"id": 0, "path": path, "name": os.path.basename(path), "ext": ext}
    try:
        from bridge.probe import probe_file, summarize  # the bridge's venv (pip bpy) has it; Blender may not

        probe = probe_file(path)
        asset.update(summarize(probe))
        asset["probe"] = probe
        if asset.get("fps_num"):
            asset["fps"] = f"{asset['fps_num']}/{asset['fps_den']}"
    except ImportError:
        asset["kind"] = "image" if ext in IMAGE_EXTS else "video"
    except FileNotFoundError:
        raise PlateImportError(f"{path}: not readable on this machine") from None
    except Exception as exc:  # the probe says what is wrong (empty, not media, truncated...)
        if seq is None:
            raise PlateImportError(f"{os.path.basename(path)}: {exc}") from None
    if seq is not None:
        asset["kind"] = "image"
        asset["sequence"] = seq
    return asset


def id_name(name: str) -> str:
    """A data-block name Blender accepts: bytes that are not UTF-8 in a file name (surrogate escapes from the
    file system) become U+FFFD, where Blender would raise on the whole import; the file path stays exact."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _colorspace(settings: PlateSettings) -> str:
    items = bpy.types.ColorManagedInputColorspaceSettings.bl_rna.properties["name"].enum_items
    return pick_colorspace(settings.colorspace, settings.colorspace_fallbacks, {i.identifier for i in items})


def apply_scene(scene: bpy.types.Scene, s: PlateSettings) -> None:
    """Frame rate (exact), frame range, resolution and pixel aspect from the plate."""
    scene.render.fps = s.fps
    scene.render.fps_base = s.fps_base
    scene.frame_start = s.frame_start
    scene.frame_end = s.frame_end
    scene.render.resolution_x = s.width
    scene.render.resolution_y = s.height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = s.pixel_aspect_x
    scene.render.pixel_aspect_y = s.pixel_aspect_y
    if s.frame_start > scene.frame_current or scene.frame_current > s.frame_end:
        scene.frame_current = s.frame_start


def _sequence_settings(asset: dict[str, Any], seq: ImageSequence, start_frame: int, rate_hint: Any) -> PlateSettings:
    s = plate_settings({**asset, "kind": "video", "fps": asset.get("fps") or rate_hint}, start_frame=start_frame)
    s.frame_count = seq.frame_count
    return s


def load_clip(path: str, s: PlateSettings, name: str) -> bpy.types.MovieClip:
    try:
        clip = bpy.data.movieclips.load(path, check_existing=False)
    except RuntimeError as exc:
        raise PlateImportError(f"Blender cannot read {os.path.basename(path)}: {exc}") from None
    clip.name = name
    clip.frame_start = s.frame_start
    clip.colorspace_settings.name = _colorspace(s)
    # Blender does not read the pixel aspect from the file: an anamorphic plate would be tracked and solved
    # as if its pixels were square.
    clip.tracking.camera.pixel_aspect = s.pixel_aspect_x / s.pixel_aspect_y
    return clip


def check_pixel_aspect(pixel_aspect: float) -> None:
    """A pixel aspect typed by hand: 0 (from the probe) or 0.1..10, the same rule as `mediaidx track`'s."""
    from .tracking.plan import pixel_aspect_error  # bpy-free

    problem = pixel_aspect_error(pixel_aspect, "pixel aspect", zero_ok=True)
    if problem:
        raise PlateImportError(problem)


def override_pixel_aspect(s: PlateSettings, pixel_aspect: float) -> None:
    """Give ``s`` the pixel aspect an artist typed (0: keep the probe's), as the scene stores it (the larger of
    x and y is the squeeze, the other 1). For plates whose metadata lost it (a transcode) or got it wrong."""
    check_pixel_aspect(pixel_aspect)
    if pixel_aspect:
        s.pixel_aspect_x, s.pixel_aspect_y = (pixel_aspect, 1.0) if pixel_aspect >= 1 else (1.0, 1 / pixel_aspect)


def import_asset(asset: dict[str, Any], mode: str, *, path: str | None = None, scene: bpy.types.Scene | None = None,
                 start_frame: int = 1, set_scene: bool = True, fps_hint: str | None = None,
                 sequence: str = "auto", pixel_aspect: float = 0.0) -> ImportResult:
    """Import ``asset`` (a bridge asset dict with probe, or ``local_asset(path)``) from ``path``. ``sequence``
    (core.sequences.SEQUENCE_CHOICES) decides whether a numbered still image brings its numbered siblings;
    ``pixel_aspect`` (0.1..10; 0: from the probe) overrides the plate's pixel aspect for the scene and the clip's
    tracking camera."""
    if mode not in MODES:
        raise PlateImportError(f"unknown import mode {mode!r}")
    check_sequence_choice(sequence)
    check_pixel_aspect(pixel_aspect)  # a bad value is refused before anything is made
    scene = scene or bpy.context.scene
    path = path or asset.get("path")
    if asset.get("status") in ("failed", "missing"):
        raise PlateImportError(f"{asset.get('name')}: {asset.get('error') or asset['status']}")
    if not readable(path):
        raise PlateImportError(f"{path}: not readable on this machine (fetch it through the bridge)")
    seq: ImageSequence | None = None
    if asset.get("kind") == "image" and sequence != "single":  # nothing is created before a refusal
        seq = asset.get("sequence") or image_sequence(path, sequence)
    if seq is not None:
        s = _sequence_settings(asset, seq, start_frame, fps_hint)
        path = seq.path(seq.first)
    else:
        s = plate_settings(asset, start_frame=start_frame)
    probed = s.pixel_aspect_x / s.pixel_aspect_y
    override_pixel_aspect(s, pixel_aspect)
    name = id_name(os.path.splitext(asset.get("name") or os.path.basename(path))[0])
    result = ImportResult(mode, name, s)
    if mode == "clip":
        clip = load_clip(path, s, name)
        scene.active_clip = clip  # a user, so the clip is saved with the file
        result.created.append(clip.name)
        _show_in_clip_editors(clip)
    elif mode == "camera-bg":
        clip = load_clip(path, s, name)
        cam = _scene_camera(scene)
        bg = cam.data.background_images.new()
        bg.source = "MOVIE_CLIP"
        bg.clip = clip
        bg.clip_user.proxy_render_size = "FULL"
        bg.use_camera_clip = False
        bg.frame_method = "FIT"
        cam.data.show_background_images = True
        scene.active_clip = clip
        result.created += [clip.name, cam.name]
    elif mode == "strip":
        result.created += _strips(scene, asset, path, s, name, seq)
    else:
        result.created += _plane(scene, asset, path, s, name, seq)
    if set_scene:  # only once the plate is in: a plate Blender refuses leaves the scene as it was
        apply_scene(scene, s)
    if seq is not None and seq.missing:
        result.warnings.append(_gap_warning(seq, mode))
    if seq is None and asset.get("kind") == "image":
        result.notes += _single_notes(path, sequence, mode)
    if pixel_aspect and abs(pixel_aspect - probed) > 1e-6:
        result.notes.append(f"pixel aspect {pixel_aspect:g} as given (the plate's metadata says {probed:.4g})")
    return result


def _single_notes(path: str, choice: str, mode: str) -> list[str]:
    """What a numbered still imported as one image could also have been, so a timelapse is one click away."""
    siblings = numbered_sequence(path)
    if siblings is None:
        return []
    notes = []
    if choice == "auto":
        others = len(siblings.files()) - 1  # the file itself is not its own neighbour
        notes.append(f"imported as one image: its {others} numbered neighbour{'s' if others != 1 else ''} "
                     f"{'are' if others != 1 else 'is'} {_why_single(siblings)}; choose Image Sequence to import "
                     "them as frames")
    extra = clip_frame_count(path) - 1
    if mode in ("clip", "camera-bg") and extra > 0:
        notes.append(f"Blender's movie clip also reads the {extra} numbered image(s) after it as frames; the "
                     "scene's frame range holds this one image")
    return notes


def _why_single(seq: ImageSequence) -> str:
    """Why auto (core.sequences.plate_naming) left numbered neighbours out, in the words of its rule."""
    from .core.sequences import plate_naming_reason

    return plate_naming_reason(seq) or "not named like a plate"


def _gap_warning(seq: ImageSequence, mode: str) -> str:
    """What a sequence with missing frames turned into: Blender's movie clip ends at the first gap."""
    shown = ", ".join(map(str, seq.missing[:5])) + (", ..." if len(seq.missing) > 5 else "")
    stop = f"the movie clip stops before image {seq.missing[0]} (Blender ends a clip at a gap)"
    what = {"clip": stop, "camera-bg": stop,
            "strip": "the strip holds the frame before each gap",
            "plane": "the plane shows nothing on those frames"}[mode]
    return f"{len(seq.missing)} missing frame(s) in the sequence ({shown}): {what}"


def _scene_camera(scene: bpy.types.Scene) -> bpy.types.Object:
    if scene.camera is not None:
        return scene.camera
    data = bpy.data.cameras.new("Plate Camera")
    cam = bpy.data.objects.new("Plate Camera", data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    return cam


def _strips(scene: bpy.types.Scene, asset: dict[str, Any], path: str, s: PlateSettings, name: str,
            seq: ImageSequence | None) -> list[str]:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # the sequencer's API takes text paths only (clips and images take any bytes)
        raise PlateImportError(f"{id_name(os.path.basename(path))}: the sequencer cannot open a file whose name is "
                               "not valid UTF-8; rename it, or import it as a clip or plane") from None
    editor = scene.sequence_editor_create()
    channel = 1 + max((st.channel for st in editor.strips_all), default=0)
    if seq is not None:
        strip = editor.strips.new_image(name, seq.path(seq.first), channel, s.frame_start)
        for fname in seq.held_files()[1:]:
            strip.elements.append(fname)
    else:
        try:
            strip = editor.strips.new_movie(name, path, channel, s.frame_start)
        except RuntimeError as exc:
            raise PlateImportError(f"Blender cannot read {os.path.basename(path)}: {exc}") from None
    strip.colorspace_settings.name = _colorspace(s)
    made = [strip.name]
    if asset.get("has_audio") and seq is None:
        try:
            sound = editor.strips.new_sound(f"{name} audio", path, channel + 1, s.frame_start)
            made.append(sound.name)
        except RuntimeError:
            pass  # a stream Blender's audio library cannot read: the picture still comes in
    return made


def _plane(scene: bpy.types.Scene, asset: dict[str, Any], path: str, s: PlateSettings, name: str,
           seq: ImageSequence | None) -> list[str]:
    """A plane with the plate's aspect, its material showing the footage (no viewport operator needed)."""
    try:
        img = bpy.data.images.load(path, check_existing=False)
    except RuntimeError as exc:
        raise PlateImportError(f"Blender cannot read {os.path.basename(path)}: {exc}") from None
    img.colorspace_settings.name = _colorspace(s)
    moving = seq is not None or asset.get("kind") == "video"
    if seq is not None:
        img.source = "SEQUENCE"
    elif asset.get("kind") == "video":
        img.source = "MOVIE"
    aspect = (s.width * s.pixel_aspect_x) / max(1, s.height * s.pixel_aspect_y)
    w, h = (aspect, 1.0) if aspect >= 1 else (1.0, 1 / aspect)
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(-w / 2, -h / 2, 0), (w / 2, -h / 2, 0), (w / 2, h / 2, 0), (-w / 2, h / 2, 0)], [],
                     [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new(name="UVMap")
    for loop, co in zip(mesh.loops, ((0, 0), (1, 0), (1, 1), (0, 1)), strict=True):
        uv.data[loop.index].uv = co
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # Blender < 5.0; 5.0 gives every material a node tree (use_nodes is deprecated)
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    emit = nodes.new("ShaderNodeEmission")
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = img
    if moving:
        tex.image_user.frame_duration = s.frame_count
        tex.image_user.frame_start = s.frame_start
        tex.image_user.frame_offset = (seq.first - 1) if seq is not None else 0
        tex.image_user.use_auto_refresh = True
    links.new(tex.outputs["Color"], emit.inputs["Color"])
    links.new(emit.outputs["Emission"], out.inputs["Surface"])
    mesh.materials.append(mat)
    obj = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(obj)
    return [obj.name, mat.name, img.name]


def _show_in_clip_editors(clip: bpy.types.MovieClip) -> None:
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type == "CLIP_EDITOR":
                area.spaces.active.clip = clip
