"""Tracking operators and the Clip Editor panel. The solve runs on the main thread (it is bpy work); the
window manager's progress shows each attempt, and failures are reported as messages, never tracebacks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty

from . import export, solver

REFINE = (("FOCAL", "Focal Length", "Refine the focal length"),
          ("FOCAL+PRINCIPAL", "Focal + Principal Point", ""),
          ("FOCAL+RADIAL", "Focal + Radial Distortion", ""),
          ("NONE", "Nothing", "Keep the lens as set"))


def _clip(context: bpy.types.Context, name: str) -> bpy.types.MovieClip | None:
    if name:
        return bpy.data.movieclips.get(name)
    space = getattr(context, "space_data", None)
    return getattr(space, "clip", None) or getattr(context, "edit_movieclip", None) or context.scene.active_clip


class MEDIAIDX_OT_track_plate(bpy.types.Operator):
    """Detect, track both ways, clean and solve the camera of a clip, retrying with other settings when the
    solve is poor"""

    bl_idname = "mediaidx.track_plate"
    bl_label = "Track & Solve Camera"
    bl_options = {"REGISTER", "UNDO"}

    clip: StringProperty(name="Clip", description="Movie clip name (default: the editor's or scene's clip)")
    refine: EnumProperty(name="Refine", items=REFINE, default="FOCAL")
    focal_px: FloatProperty(name="Focal (px)", default=0.0, min=0.0,
                            description="Known focal length in pixels; 0 to guess and refine")
    good_error: FloatProperty(name="Good Enough (px)", default=0.3, min=0.01,
                              description="Stop retrying once the solve error is below this")

    def execute(self, context: bpy.types.Context) -> set[str]:
        clip = _clip(context, self.clip)
        if clip is None:
            self.report({"ERROR"}, f"no movie clip named {self.clip!r}" if self.clip
                        else "no movie clip: import a plate first")
            return {"CANCELLED"}
        plate = bpy.path.abspath(clip.filepath)
        if not os.path.isfile(plate):  # moved or deleted since it was loaded: not "a featureless plate"
            self.report({"ERROR"}, f"{clip.name}: the plate is missing on disk ({plate})")
            return {"CANCELLED"}
        wm = context.window_manager
        wm.progress_begin(0, 100)
        try:
            res = solver.track_plate(clip, refine="" if self.refine == "NONE" else self.refine,
                                     focal_px=self.focal_px or None, good_error_px=self.good_error,
                                     progress=lambda f, m: wm.progress_update(int(100 * f)))
        except RuntimeError as exc:  # an operator refused (context, clip without frames...)
            self.report({"ERROR"}, f"{clip.name}: tracking failed: {exc}")
            return {"CANCELLED"}
        finally:
            wm.progress_end()
        clip["mediaidx_solve"] = json.dumps(res.as_dict())
        if not res.ok:
            self.report({"ERROR"}, f"{clip.name}: no solve: {res.reason}")
            return {"CANCELLED"}
        context.scene.active_clip = clip
        export.solved_camera(context.scene, clip)
        self.report({"INFO"}, f"{clip.name}: solved with '{res.strategy}', {res.error_px:.3f} px, "
                              f"{res.bundles} bundles, focal {res.focal_px:.1f} px")
        return {"FINISHED"}


class MEDIAIDX_OT_export_tracking(bpy.types.Operator):
    """Export the solved camera (.chan, FBX, Alembic), 2D tracks (3DE, CSV, JSON), lens, plate and a shot
    manifest"""

    bl_idname = "mediaidx.export_tracking"
    bl_label = "Export Tracking"

    directory: StringProperty(name="Folder", subtype="DIR_PATH")
    clip: StringProperty(name="Clip")
    chan: BoolProperty(name="Nuke .chan", default=True)
    fbx: BoolProperty(name="FBX", default=True)
    abc: BoolProperty(name="Alembic", default=True)
    tracks: BoolProperty(name="2D tracks (3DE, CSV, JSON)", default=True)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        clip = _clip(context, self.clip)
        if clip is None or not clip.tracking.objects.active.reconstruction.is_valid:
            self.report({"ERROR"}, "no solved clip: track and solve first")
            return {"CANCELLED"}
        if not self.directory:
            self.report({"ERROR"}, "choose a folder to export to")
            return {"CANCELLED"}
        formats = tuple(f for f, on in (("chan", self.chan), ("fbx", self.fbx), ("abc", self.abc),
                                        ("3de", self.tracks), ("csv", self.tracks), ("json", self.tracks)) if on)
        out = Path(bpy.path.abspath(self.directory))
        try:
            exp = export.export_camera(context.scene, clip, out, formats=formats)
        except (OSError, ValueError, RuntimeError) as exc:
            self.report({"ERROR"}, f"export failed: {exc}")
            return {"CANCELLED"}
        from .shot import single_camera_manifest

        try:
            single_camera_manifest(context.scene, clip, exp, out)
        except OSError as exc:
            self.report({"ERROR"}, f"export failed: {exc}")
            return {"CANCELLED"}
        if exp.unsolved_frames:
            runs = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in exp.unsolved_frames)
            self.report({"WARNING"}, f"{clip.name}: no solved camera on frames {runs}: the export holds the "
                                     "nearest solved camera there")
        self.report({"INFO"}, f"exported {len(exp.files)} files to {out}")
        return {"FINISHED"}


class MEDIAIDX_PT_tracking(bpy.types.Panel):
    bl_label = "Camera Tracking"
    bl_idname = "MEDIAIDX_PT_tracking"
    bl_space_type = "CLIP_EDITOR"
    bl_region_type = "UI"
    bl_category = "Media"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        clip = getattr(context.space_data, "clip", None)
        if clip is None:
            layout.label(text="Open a clip to track it")
            return
        layout.operator(MEDIAIDX_OT_track_plate.bl_idname, icon="TRACKING")
        rec = clip.tracking.objects.active.reconstruction
        if rec.is_valid:
            col = layout.column(align=True)
            col.label(text=f"Solve error: {rec.average_error:.3f} px")
            col.label(text=f"Tracks: {len(clip.tracking.objects.active.tracks)}, "
                           f"focal {clip.tracking.camera.focal_length:.2f} mm")
            layout.operator(MEDIAIDX_OT_export_tracking.bl_idname, icon="EXPORT")
        elif "mediaidx_solve" in clip:
            reason = json.loads(clip["mediaidx_solve"]).get("reason", "")
            layout.label(text="No solve", icon="ERROR")
            for line in reason.split("; ")[:3]:
                layout.label(text=line[:80])


classes = (MEDIAIDX_OT_track_plate, MEDIAIDX_OT_export_tracking, MEDIAIDX_PT_tracking)
