"""Media Index for Blender: browse the mediaidx catalog, import plates, receive shots from the bridge.

Register-time rule (Blender wraps add-on import and register() in a restricted context; the pip bpy module
does not, so tests/blender/test_register_static.py checks it): nothing here touches bpy.context, bpy.data
or bpy.ops at import or in register(). The bridge connection starts later, from a timer or an operator.
"""

from __future__ import annotations


def register() -> None:
    from . import registration

    registration.register()


def unregister() -> None:
    from . import registration

    registration.unregister()
