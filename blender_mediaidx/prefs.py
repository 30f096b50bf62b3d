"""Add-on preferences: where the bridge is, how to authenticate, where fetched media goes."""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

PACKAGE = __package__ or "blender_mediaidx"

MODES = [
    ("clip", "Movie Clip", "A movie clip for tracking"),
    ("camera-bg", "Camera Background", "The clip as the scene camera's background"),
    ("strip", "Sequencer Strip", "A movie strip (and its sound) in the sequencer"),
    ("plane", "Image Plane", "A plane showing the plate"),
]


class MEDIAIDX_Preferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    bridge_address: StringProperty(name="Bridge", default="tcp://127.0.0.1:5557",
                                   description="ZeroMQ address of `mediaidx serve`")
    server_public_key: StringProperty(name="Server Key", default="",
                                      description="The bridge's public CURVE key (needed when it is not on this machine)")
    client_key_file: StringProperty(name="Client Key File", subtype="FILE_PATH", default="",
                                    description="This machine's .key_secret file from `mediaidx keys --client`")
    session_name: StringProperty(name="Session Name", default="",
                                 description="How `mediaidx push --to NAME` finds this Blender (default: host name)")
    cache_dir: StringProperty(name="Cache Folder", subtype="DIR_PATH", default="",
                              description="Where plates fetched through the bridge are kept (default: extension folder)")
    auto_connect: BoolProperty(name="Connect at Start", default=True)
    receive_shots: BoolProperty(name="Receive Pushed Shots", default=True)
    default_mode: EnumProperty(name="Import As", items=MODES, default="clip")
    start_frame: IntProperty(name="Start Frame", default=1, min=0, description="1, or 1001 for VFX plates")

    def draw(self, context: bpy.types.Context) -> None:
        col = self.layout.column()
        for prop in ("bridge_address", "server_public_key", "client_key_file", "session_name", "cache_dir",
                     "auto_connect", "receive_shots", "default_mode", "start_frame"):
            col.prop(self, prop)


@dataclass
class Settings:
    """Preferences as plain values, also when the package runs outside Blender's add-on system."""

    bridge_address: str = "tcp://127.0.0.1:5557"
    server_public_key: str = ""
    client_key_file: str = ""
    session_name: str = ""
    cache_dir: str = ""
    auto_connect: bool = True
    receive_shots: bool = True
    default_mode: str = "clip"
    start_frame: int = 1

    @property
    def name(self) -> str:
        return self.session_name or f"blender@{socket.gethostname()}"

    @property
    def cache(self) -> Path:
        if self.cache_dir:
            path = Path(bpy.path.abspath(self.cache_dir))
        else:
            try:
                path = Path(bpy.utils.extension_path_user(PACKAGE, path="cache", create=True))
            except ValueError:  # not installed as an extension (python -m blender_mediaidx.batch)
                path = Path(os.environ.get("MEDIAIDX_BLENDER_CACHE", Path(tempfile.gettempdir()) / "mediaidx-cache"))
        path.mkdir(parents=True, exist_ok=True)
        return path


def settings() -> Settings:
    addon = bpy.context.preferences.addons.get(PACKAGE)
    if addon is None:
        return Settings(bridge_address=os.environ.get("MEDIAIDX_BRIDGE", Settings.bridge_address))
    p = addon.preferences
    return Settings(**{f: getattr(p, f) for f in Settings.__dataclass_fields__})


classes = (MEDIAIDX_Preferences,)
