"""`bpy.ops.mediaidx.build_synced_timeline`: clips of one event laid out as aligned sequencer strips.

Takes the results of `mediaidx sync --json` (a file or the JSON text), or a list of files that it syncs here
when the bridge's Python package is importable (the pip `bpy` environment, headless jobs)."""

from __future__ import annotations

import json
import os

import bpy
from bpy.props import IntProperty, StringProperty

from .core.scene_setup import scene_rate
from .core.synced import place


class MEDIAIDX_OT_build_synced_timeline(bpy.types.Operator):
    """Lay out clips of one event as sequencer strips aligned by their sound"""

    bl_idname = "mediaidx.build_synced_timeline"
    bl_label = "Build Synced Timeline"
    bl_options = {"REGISTER", "UNDO"}

    results: StringProperty(name="Sync Results", description="JSON from `mediaidx sync --json`, or its file")
    files: StringProperty(name="Files", description="Files to sync here, separated by ';'")
    start_frame: IntProperty(name="Start Frame", default=1)

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            results = self._results()
        except (OSError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        scene = context.scene
        fps = scene_rate(scene.render.fps, scene.render.fps_base)
        placements, unsynced = place(results, fps, self.start_frame)
        if not placements:
            self.report({"ERROR"}, "nothing synced to lay out")
            return {"CANCELLED"}
        editor = scene.sequence_editor_create()
        end = scene.frame_start
        for p in placements:
            name = os.path.basename(p.path)
            try:
                strip = editor.strips.new_movie(name, p.path, p.channel, p.frame_start)
                strip["mediaidx_offset_seconds"] = p.offset_seconds
                end = max(end, strip.frame_final_end)
            except RuntimeError:
                strip = None  # audio only: the sound strip below is the clip
            try:
                sound = editor.strips.new_sound(f"{name} audio", p.path, p.channel + 1, p.frame_start)
                sound["mediaidx_offset_seconds"] = p.offset_seconds
                end = max(end, sound.frame_final_end)
            except RuntimeError:
                if strip is None:
                    self.report({"WARNING"}, f"{name}: Blender cannot read it")
        scene.frame_start = min(p.frame_start for p in placements)
        scene.frame_end = max(scene.frame_start, end - 1)
        for u in unsynced:
            self.report({"WARNING"}, f"{os.path.basename(u['path'])}: not synced ({u.get('reason', '')})")
        self.report({"INFO"}, f"{len(placements)} clips in sync, {len(unsynced)} left out")
        return {"FINISHED"}

    def _results(self) -> list[dict]:
        text = self.results.strip()
        if text and not text.startswith(("{", "[")) and os.path.exists(bpy.path.abspath(text)):
            with open(bpy.path.abspath(text), encoding="utf-8") as fh:
                text = fh.read()
        if text:
            return _checked(json.loads(text))
        files = [f for f in (s.strip() for s in self.files.split(";")) if f]
        if len(files) < 2:
            raise ValueError("give sync results or at least two files")
        try:
            from bridge.sync import sync_files
        except ImportError:
            raise ValueError("the bridge is not importable here: run `mediaidx sync --json` and pass its output") from None
        return [r.as_dict() for r in sync_files(files)]


def _checked(doc: object) -> list[dict]:
    """The results list of `mediaidx sync --json` output; ValueError (shown as one line) for anything else."""
    if isinstance(doc, dict):
        doc = doc.get("results")
    if not isinstance(doc, list):
        raise ValueError("sync results: expected the output of `mediaidx sync --json` ({\"results\": [...]})")
    for i, r in enumerate(doc):
        if not isinstance(r, dict) or not isinstance(r.get("path"), str):
            raise ValueError(f"sync results: entry {i} has no file path")
        offset = r.get("offset_seconds")
        if offset is not None and (isinstance(offset, bool) or not isinstance(offset, (int, float))
                                   or offset != offset or abs(offset) == float("inf")):
            raise ValueError(f"sync results: entry {i} ({os.path.basename(r['path'])}): offset_seconds "
                             f"{offset!r} is not a number")
    return doc


classes = (MEDIAIDX_OT_build_synced_timeline,)
