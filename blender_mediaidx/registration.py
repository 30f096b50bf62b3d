"""Class registration in one place, in dependency order (props before the panels that draw them)."""

from __future__ import annotations

import bpy

from . import bridge_link, ops, prefs, props, sync_ops, ui
from .tracking import ops as tracking_ops

_register, _unregister = bpy.utils.register_classes_factory(
    (*prefs.classes, *props.classes, *ops.classes, *ui.classes, *tracking_ops.classes, *sync_ops.classes))


def register() -> None:
    _register()
    props.register_props()
    bridge_link.on_register()


def unregister() -> None:
    bridge_link.on_unregister()
    props.unregister_props()
    _unregister()
