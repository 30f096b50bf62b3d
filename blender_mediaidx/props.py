"""Panel state on the WindowManager (not saved in .blend files): search, results, connection, jobs."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    StringProperty,
)

from .core.sequences import SEQUENCE_CHOICE_ITEMS


class MEDIAIDX_AssetItem(bpy.types.PropertyGroup):
    asset_id: IntProperty()
    name: StringProperty()
    kind: StringProperty()
    path: StringProperty()
    codec: StringProperty()
    resolution: StringProperty()
    fps: StringProperty()
    duration: FloatProperty()
    has_audio: BoolProperty()
    audio_silent: BoolProperty()
    captured: StringProperty()
    camera: StringProperty()
    timecode: StringProperty()
    rating: IntProperty()
    tags: StringProperty()
    thumb_key: StringProperty()


def _search_again(self: MEDIAIDX_State, context: bpy.types.Context) -> None:
    from . import bridge_link

    try:
        bridge_link.search(self)
    except bridge_link.LinkError as exc:  # a wrong preference: shown in the panel, not as a console traceback
        self.message = str(exc)


def _active_asset(state: MEDIAIDX_State) -> int:
    """The catalog id of the selected result (0: none)."""
    return state.results[state.active].asset_id if 0 <= state.active < len(state.results) else 0


def _pixel_aspect_typed(self: MEDIAIDX_State, context: bpy.types.Context) -> None:
    # the plate the override was typed for: another result selected later does not get it
    self.import_pixel_aspect_for = _active_asset(self) if self.import_pixel_aspect else 0


def _active_changed(self: MEDIAIDX_State, context: bpy.types.Context) -> None:
    # a pixel aspect typed for one plate does not stick to the next one selected
    if self.import_pixel_aspect and self.import_pixel_aspect_for != _active_asset(self):
        self.import_pixel_aspect = 0.0


class MEDIAIDX_State(bpy.types.PropertyGroup):
    query: StringProperty(name="Search", description="Words in names, folders, metadata, tags, notes",
                          update=_search_again, options={"TEXTEDIT_UPDATE"})
    kind: EnumProperty(name="Kind", items=[("ANY", "Any", ""), ("video", "Video", ""), ("image", "Image", ""),
                                           ("audio", "Audio", "")], default="ANY", update=_search_again)
    resolution: EnumProperty(name="Resolution", items=[("ANY", "Any", ""), ("4k", "4K+", ""), ("2k", "2K+", ""),
                                                       ("1080p", "1080p+", ""), ("720p", "720p+", "")],
                             default="ANY", update=_search_again)
    has_audio: EnumProperty(name="Audio", items=[("ANY", "Any", ""), ("YES", "With Audio", ""),
                                                 ("NO", "Without", "")], default="ANY", update=_search_again)
    tag: StringProperty(name="Tag", update=_search_again)
    min_rating: IntProperty(name="Rating", min=0, max=5, default=0, update=_search_again)
    results: CollectionProperty(type=MEDIAIDX_AssetItem)
    active: IntProperty(name="Result", default=0, update=_active_changed)
    total: IntProperty()
    connection: StringProperty(default="disconnected")
    message: StringProperty(default="")
    receive_shots: BoolProperty(name="Receive Pushed Shots", default=True,
                                description="Import shots sent with `mediaidx push --to <this session>`")
    job: StringProperty(default="")
    job_progress: FloatProperty(min=0.0, max=1.0, subtype="FACTOR")
    import_mode: EnumProperty(name="Import As", items=[
        ("clip", "Clip", ""), ("camera-bg", "Camera BG", ""), ("strip", "Strip", ""), ("plane", "Plane", "")],
        default="clip")
    import_sequence: EnumProperty(name="Numbered Images", items=SEQUENCE_CHOICE_ITEMS, default="auto",
                                  description="A numbered still image: the one file, or its whole image sequence")
    import_pixel_aspect: FloatProperty(
        name="Pixel Aspect", default=0.0, min=0.0, max=10.0, soft_max=4.0, precision=4,
        description="Width / height of a stored pixel (2 for a 2x anamorphic squeeze), for a plate whose metadata "
                    "lost it or got it wrong; 0: from the plate's metadata. For the selected result only",
        update=_pixel_aspect_typed)
    import_pixel_aspect_for: IntProperty(default=0, description="The asset id import_pixel_aspect was typed for")


classes = (MEDIAIDX_AssetItem, MEDIAIDX_State)


def register_props() -> None:
    bpy.types.WindowManager.mediaidx = bpy.props.PointerProperty(type=MEDIAIDX_State)


def unregister_props() -> None:
    if hasattr(bpy.types.WindowManager, "mediaidx"):
        del bpy.types.WindowManager.mediaidx
