"""Operators. `execute()` blocks (scripts, headless); `invoke()` stays responsive with a modal timer
(Flamenco style) while a plate is fetched through the bridge."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from . import bridge_link
from .core import protocol as P
from .core.sequences import SEQUENCE_CHOICE_ITEMS
from .prefs import MODES

PIXEL_ASPECT_HELP = ("Width / height of a stored pixel (2 for a 2x anamorphic squeeze), for a plate whose metadata "
                     "lost it or got it wrong; 0: from the plate's metadata")


class MEDIAIDX_OT_connect(bpy.types.Operator):
    """Connect to the mediaidx bridge"""

    bl_idname = "mediaidx.connect"
    bl_label = "Connect"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            bridge_link.link()
        except bridge_link.LinkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class MEDIAIDX_OT_disconnect(bpy.types.Operator):
    """Close the link to the bridge"""

    bl_idname = "mediaidx.disconnect"
    bl_label = "Disconnect"

    def execute(self, context: bpy.types.Context) -> set[str]:
        bridge_link.disconnect()
        return {"FINISHED"}


class MEDIAIDX_OT_search(bpy.types.Operator):
    """Search the media index"""

    bl_idname = "mediaidx.search"
    bl_label = "Search"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            bridge_link.search(context.window_manager.mediaidx)
        except bridge_link.LinkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class MEDIAIDX_OT_scan(bpy.types.Operator):
    """Ask the bridge to rescan its roots (progress shows in the panel)"""

    bl_idname = "mediaidx.scan"
    bl_label = "Rescan Library"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            lk = bridge_link.link()
        except bridge_link.LinkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        st = context.window_manager.mediaidx
        st.job, st.job_progress = "scan: starting", 0.0
        lk.client.request("scan", {"thumbs": True}, on_error=lambda e: bridge_link._report(e.message))
        return {"FINISHED"}


class MEDIAIDX_OT_import_plate(bpy.types.Operator):
    """Import a plate (asset from the index, or a file) and set the scene's frame rate, range and size"""

    bl_idname = "mediaidx.import_plate"
    bl_label = "Import Plate"
    bl_options = {"REGISTER", "UNDO"}

    asset_id: IntProperty(name="Asset", default=0, description="Asset id in the index (0: use the file path)")
    filepath: StringProperty(name="File", subtype="FILE_PATH", default="")
    mode: EnumProperty(name="Import As", items=MODES, default="clip")
    sequence: EnumProperty(name="Numbered Images", items=SEQUENCE_CHOICE_ITEMS, default="auto",
                           description="A numbered still image: the one file, or its whole image sequence")
    start_frame: IntProperty(name="Start Frame", default=-1, description="-1: the preference (1 or 1001)")
    # 0: from the metadata; 0 < value < 0.1 is refused in one line (importer.check_pixel_aspect)
    # SKIP_SAVE: an override typed for one plate is not remembered for the next import (Blender reuses an
    # operator's last values otherwise)
    pixel_aspect: FloatProperty(name="Pixel Aspect", default=0.0, min=0.0, max=10.0, soft_max=4.0, precision=4,
                                description=PIXEL_ASPECT_HELP, options={"SKIP_SAVE"})
    force_fetch: BoolProperty(name="Fetch Through the Bridge", default=False, options={"SKIP_SAVE"},
                              description="Copy the file through the bridge even if it looks readable here")
    timeout: IntProperty(name="Timeout", default=600, min=1, options={"SKIP_SAVE"})

    _transfer: Any = None
    _timer: Any = None
    _result: Any = None
    _error: str | None = None

    def _asset(self) -> dict[str, Any]:
        from . import importer

        if self.asset_id:
            lk = bridge_link.link()
            if not bridge_link.wait(lambda: lk.client.state == "connected", 10):
                raise importer.PlateImportError("the bridge is not connected")
            return lk.client.call("show", {"asset": self.asset_id}, timeout_s=30)
        if not self.filepath:
            raise importer.PlateImportError("give an asset id or a file")
        return importer.local_asset(bpy.path.abspath(self.filepath), self.sequence)

    def _start(self, context: bpy.types.Context) -> bool:
        """Import now, or start a fetch; True when a fetch is running."""
        from . import importer
        from .prefs import settings

        asset = self._asset()
        start = self.start_frame if self.start_frame >= 0 else settings().start_frame
        self._result, self._error = None, None
        if not self.asset_id or (importer.readable(asset.get("path")) and not self.force_fetch):
            self._result = importer.import_asset(asset, self.mode, scene=context.scene, start_frame=start,
                                                 sequence=self.sequence, pixel_aspect=self.pixel_aspect)
            return False
        lk = bridge_link.link()
        lk.settings.start_frame = start

        def done(result: Any) -> None:
            self._result = result

        # The Numbered Images choice and the pixel aspect go with the fetch (checked before it starts).
        self._transfer = lk.import_shot(asset, self.mode, scene=context.scene, force_fetch=True, on_done=done,
                                        sequence=self.sequence, pixel_aspect=self.pixel_aspect)
        return True

    def _finish(self) -> set[str]:
        if self._result is None:
            lk = bridge_link.link(connect=False)
            self.report({"ERROR"}, self._error or (lk.errors[-1] if lk and lk.errors else "import failed"))
            return {"CANCELLED"}
        s = self._result.settings
        for warning in self._result.warnings:
            self.report({"WARNING"}, f"{self._result.name}: {warning}")
        for note in getattr(self._result, "notes", ()):  # a pushed shot's result may come from an older importer
            self.report({"INFO"}, f"{self._result.name}: {note}")
        self.report({"INFO"}, f"{self._result.name}: {self._result.mode}, {s.fps}/{s.fps_base:g} fps, "
                              f"frames {s.frame_start}-{s.frame_end}, {s.width}x{s.height}")
        return {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        from . import importer

        try:
            fetching = self._start(context)
        except (importer.PlateImportError, P.RemoteError, bridge_link.LinkError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if fetching:
            t, lk = self._transfer, bridge_link.link()
            errors_before = len(lk.errors)
            # The import runs in a pump callback once the file has arrived and checked out.
            lk.client.wait(lambda: self._result is not None or t.error is not None
                           or (t.done and len(lk.errors) > errors_before), self.timeout)
            if t.error:
                self._error = f"fetch failed: {t.error.message}"
            elif not t.finished:
                self._error = f"the fetch did not finish within {self.timeout} s"
        return self._finish()

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        from . import importer

        try:
            fetching = self._start(context)
        except (importer.PlateImportError, P.RemoteError, bridge_link.LinkError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not fetching:
            return self._finish()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.05, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            self._stop(context)
            self.report({"WARNING"}, "fetch cancelled; it resumes where it stopped next time")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        bridge_link.pump()
        t = self._transfer
        if t.size:
            context.window_manager.progress_update(int(100 * t.received / t.size))
        if t.error:
            self._error = f"fetch failed: {t.error.message}"
        if self._result is not None or t.error:
            self._stop(context)
            return self._finish()
        return {"RUNNING_MODAL"}

    def _stop(self, context: bpy.types.Context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        t = self._transfer
        if t is not None and not t.finished and t.transfer_id is not None:
            bridge_link.link().client.notify("abort", {"transfer": t.transfer_id})


class MEDIAIDX_OT_import_selected(bpy.types.Operator):
    """Import the selected search result"""

    bl_idname = "mediaidx.import_selected"
    bl_label = "Import Selected"
    bl_options = {"REGISTER", "UNDO"}

    mode: EnumProperty(name="Import As", items=MODES, default="clip")
    sequence: EnumProperty(name="Numbered Images", items=SEQUENCE_CHOICE_ITEMS, default="auto",
                           description="A numbered still image: the one file, or its whole image sequence")
    # 0: from the metadata; 0 < value < 0.1 is refused in one line (importer.check_pixel_aspect)
    # SKIP_SAVE: an override typed for one plate is not remembered for the next import (Blender reuses an
    # operator's last values otherwise)
    pixel_aspect: FloatProperty(name="Pixel Aspect", default=0.0, min=0.0, max=10.0, soft_max=4.0, precision=4,
                                description=PIXEL_ASPECT_HELP, options={"SKIP_SAVE"})

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        st = context.window_manager.mediaidx
        if not 0 <= st.active < len(st.results):
            self.report({"ERROR"}, "select a result first")
            return {"CANCELLED"}
        return bpy.ops.mediaidx.import_plate("INVOKE_DEFAULT", asset_id=st.results[st.active].asset_id,
                                             mode=self.mode, sequence=self.sequence, pixel_aspect=self.pixel_aspect)

    def execute(self, context: bpy.types.Context) -> set[str]:
        st = context.window_manager.mediaidx
        if not 0 <= st.active < len(st.results):
            self.report({"ERROR"}, "select a result first")
            return {"CANCELLED"}
        return bpy.ops.mediaidx.import_plate(asset_id=st.results[st.active].asset_id, mode=self.mode,
                                             sequence=self.sequence, pixel_aspect=self.pixel_aspect)


classes = (MEDIAIDX_OT_connect, MEDIAIDX_OT_disconnect, MEDIAIDX_OT_search, MEDIAIDX_OT_scan,
           MEDIAIDX_OT_import_plate, MEDIAIDX_OT_import_selected)
