"""The bpy-free core of the extension: protocol codec, bridge client, probe-to-scene mapping, exporters.
Everything here imports and tests without Blender."""
