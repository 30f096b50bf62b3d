"""Building the Blender extension from this repository (manifest, wheels, zips, a self-hosted repo)."""
