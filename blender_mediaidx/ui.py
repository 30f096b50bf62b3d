"""Sidebar panels (tab "Media") in the 3D Viewport, Clip Editor and Sequencer."""

from __future__ import annotations

import bpy

from . import bridge_link


class MEDIAIDX_UL_results(bpy.types.UIList):
    bl_idname = "MEDIAIDX_UL_results"

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        lk = bridge_link.link(connect=False)
        icon_value = lk.icon(item.thumb_key) if lk else 0
        row = layout.row(align=True)
        if icon_value:
            row.label(text=item.name, icon_value=icon_value)
        else:
            row.label(text=item.name, icon={"video": "FILE_MOVIE", "image": "FILE_IMAGE",
                                            "audio": "FILE_SOUND"}.get(item.kind, "FILE"))
        row.label(text=" ".join(x for x in (item.resolution, _fps(item.fps)) if x))


def _fps(fps: str) -> str:
    if not fps:
        return ""
    num, _, den = fps.partition("/")
    try:
        return f"{int(num) / int(den or 1):.3f}".rstrip("0").rstrip(".") + " fps"
    except (ValueError, ZeroDivisionError):  # "0/0" from a broken header must not break every redraw
        return fps


class _MediaPanel:
    bl_region_type = "UI"
    bl_category = "Media"
    bl_label = "Media Index"

    def draw(self, context: bpy.types.Context) -> None:
        st = context.window_manager.mediaidx
        layout = self.layout
        row = layout.row(align=True)
        connected = st.connection == "connected"
        row.label(text=f"Bridge: {st.connection}", icon="LINKED" if connected else "UNLINKED")
        if bridge_link.link(connect=False) is None:
            row.operator("mediaidx.connect", text="", icon="PLAY")
        else:
            row.operator("mediaidx.disconnect", text="", icon="CANCEL")
        if st.message:
            layout.label(text=st.message, icon="ERROR")
        box = layout.box()
        box.prop(st, "query", text="", icon="VIEWZOOM")
        grid = box.grid_flow(columns=2, align=True)
        grid.prop(st, "kind", text="")
        grid.prop(st, "resolution", text="")
        grid.prop(st, "has_audio", text="")
        grid.prop(st, "min_rating")
        box.prop(st, "tag")
        row = box.row()
        row.label(text=f"{st.total} found")
        row.operator("mediaidx.search", text="", icon="FILE_REFRESH")
        layout.template_list("MEDIAIDX_UL_results", "", st, "results", st, "active", rows=6)
        if 0 <= st.active < len(st.results):
            self._details(layout, st.results[st.active], st)
        layout.prop(st, "receive_shots")
        if st.job:
            col = layout.column()
            col.label(text=st.job)
            col.progress(factor=st.job_progress)
        layout.operator("mediaidx.scan", icon="FILE_REFRESH")

    def _details(self, layout: bpy.types.UILayout, item: bpy.types.PropertyGroup, st: bpy.types.PropertyGroup) -> None:
        box = layout.box()
        lk = bridge_link.link(connect=False)
        icon_value = lk.icon(item.thumb_key) if lk else 0
        if icon_value:
            box.template_icon(icon_value=icon_value, scale=6.0)
        col = box.column(align=True)
        for label, value in (("Codec", item.codec), ("Resolution", item.resolution), ("Frame rate", _fps(item.fps)),
                             ("Duration", f"{item.duration:.2f} s" if item.duration else ""),
                             ("Audio", ("silent" if item.audio_silent else "yes") if item.has_audio else "no"),
                             ("Timecode", item.timecode), ("Captured", item.captured), ("Camera", item.camera),
                             ("Tags", item.tags)):
            if value:
                col.label(text=f"{label}: {value}")
        if item.kind == "image":  # a numbered still: one photo or its sequence (movies are always movies)
            box.prop(st, "import_sequence", text="")
        # The override belongs to the result it was typed for (props._pixel_aspect_typed): another result, even
        # after a new search put a different plate at the same row, imports with its own metadata.
        pixel_aspect = st.import_pixel_aspect if st.import_pixel_aspect_for == item.asset_id else 0.0
        if item.kind in ("video", "image"):  # 0 = the plate's own (probed) pixel aspect
            row = box.row()
            row.alert = bool(pixel_aspect)  # an override in force shows, so it is not applied unseen
            row.prop(st, "import_pixel_aspect")
            if st.import_pixel_aspect and not pixel_aspect:
                box.label(text="Pixel aspect typed for another result: this one uses its metadata", icon="INFO")
        row = box.row(align=True)
        row.prop(st, "import_mode", text="")
        op = row.operator("mediaidx.import_selected", text="Import", icon="IMPORT")
        op.mode = st.import_mode
        op.sequence = st.import_sequence
        op.pixel_aspect = pixel_aspect if item.kind in ("video", "image") else 0.0


class MEDIAIDX_PT_view3d(_MediaPanel, bpy.types.Panel):
    bl_idname = "MEDIAIDX_PT_view3d"
    bl_space_type = "VIEW_3D"


class MEDIAIDX_PT_clip(_MediaPanel, bpy.types.Panel):
    bl_idname = "MEDIAIDX_PT_clip"
    bl_space_type = "CLIP_EDITOR"


class MEDIAIDX_PT_sequencer(_MediaPanel, bpy.types.Panel):
    bl_idname = "MEDIAIDX_PT_sequencer"
    bl_space_type = "SEQUENCE_EDITOR"


classes = (MEDIAIDX_UL_results, MEDIAIDX_PT_view3d, MEDIAIDX_PT_clip, MEDIAIDX_PT_sequencer)
