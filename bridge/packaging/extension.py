"""Stage, validate and build the Blender extension.

The repository keeps `blender_manifest.toml` at the top and the add-on code in `blender_mediaidx/`; Blender
wants them side by side with `./wheels/`. ``stage`` assembles that layout under build/extension/.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "blender_mediaidx"
MANIFEST = REPO / "blender_manifest.toml"
WHEEL_CACHE = REPO / "build" / "wheels"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "tests")


def manifest() -> dict:
    with open(MANIFEST, "rb") as fh:
        return tomllib.load(fh)


def stage(dest_repo: Path, *, wheels: bool = True) -> Path:
    """Write ``dest_repo/<id>/`` = add-on code + manifest (+ wheels/ when ``wheels``). Returns that folder."""
    m = manifest()
    target = Path(dest_repo) / m["id"]
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(PACKAGE, target, ignore=IGNORE)
    text = MANIFEST.read_text(encoding="utf-8")
    if not wheels:
        # A development install uses the wheels already in the Python environment.
        start = text.index("wheels = [")
        end = text.index("]", start) + 1
        text = text[:start] + text[end:]
    (target / "blender_manifest.toml").write_text(text, encoding="utf-8")
    if wheels:
        (target / "wheels").mkdir()
        for rel in m.get("wheels", []):
            name = Path(rel).name
            src = WHEEL_CACHE / name
            if not src.is_file():
                raise FileNotFoundError(f"{src}: run `python -m bridge.packaging.extension wheels` first")
            shutil.copy2(src, target / "wheels" / name)
    return target
