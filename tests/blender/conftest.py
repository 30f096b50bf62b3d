"""Blender tests: the real bpy module (5.0.1) with the extension installed the way Blender installs it.

HOME points at a session temp folder before bpy is imported, so Blender's user configuration (extension
repositories, preferences, extension user folders) never touches the real one.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="mediaidx-blender-home-"))
os.environ["HOME"] = str(_HOME)
os.environ.pop("XDG_CONFIG_HOME", None)

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")

REPO_MODULE = "mediaidx_test"


@pytest.fixture(scope="session")
def blender_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def extension(blender_home: Path) -> str:
    """Install blender_mediaidx as an extension from a local repository and enable it; returns its module
    name (bl_ext.<repo>.blender_mediaidx)."""
    from bridge.packaging.extension import stage

    repo_dir = blender_home / "ext-repo"
    stage(repo_dir, wheels=False)
    repos = bpy.context.preferences.extensions.repos
    for r in list(repos):
        r.enabled = False
    repos.new(name=REPO_MODULE, module=REPO_MODULE, custom_directory=str(repo_dir))
    module = f"bl_ext.{REPO_MODULE}.blender_mediaidx"
    assert bpy.ops.preferences.addon_enable(module=module) == {"FINISHED"}
    yield module
    bpy.ops.preferences.addon_disable(module=module)


@pytest.fixture
def ext(extension: str):
    """The enabled extension's package object."""
    return sys.modules[extension]


@pytest.fixture
def clean_scene(extension: str):
    """A fresh empty scene for each test (the extension stays enabled)."""
    bpy.ops.wm.read_homefile(use_empty=True)
    yield bpy.context.scene
