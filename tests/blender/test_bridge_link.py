"""A Blender session (bpy + the installed extension) talking to a real bridge process over loopback."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import bpy
import pytest

from bridge import MediaIndexer, synth

CLI = [sys.executable, "-m", "bridge.cli.app"]
SESSION = "blender-test-session"


@pytest.fixture
def served(tmp_path: Path, bridge_process):
    root = tmp_path / "nas"
    root.mkdir()
    synth.make_video(root / "sh010.mov", fps=Fraction(24000, 1001), frames=24, width=320, height=180,
                     audio=synth.tone())
    synth.make_video(root / "sh020.mp4", fps=Fraction(30000, 1001), frames=30, width=320, height=180)
    synth.make_image(root / "ref.jpg", width=64, height=48)
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(root, thumbs=True)
        ids = {a.name: a.id for a in ix.search(limit=10)}
    bridge = bridge_process(cat, cache)
    return bridge, ids, cat


@pytest.fixture
def link_mod(extension: str, clean_scene, served, tmp_path: Path):
    bridge, _ids, _cat = served
    prefs = bpy.context.preferences.addons[extension].preferences
    prefs.bridge_address = bridge.endpoint
    prefs.session_name = SESSION
    prefs.cache_dir = str(tmp_path / "blender-cache")
    mod = sys.modules[f"{extension}.bridge_link"]
    mod.disconnect()
    yield mod
    mod.disconnect()


def state():
    return bpy.context.window_manager.mediaidx


def test_connect_search_thumbnails(link_mod, served) -> None:
    lk = link_mod.link()
    assert link_mod.wait(lambda: state().connection == "connected", 10), state().message
    assert lk.client.session["session"] == SESSION
    state().query = "sh0"  # the property's update callback sends the search
    assert link_mod.wait(lambda: len(state().results) == 2, 10)
    names = sorted(r.name for r in state().results)
    assert names == ["sh010.mov", "sh020.mp4"]
    item = next(r for r in state().results if r.name == "sh010.mov")
    assert item.fps == "24000/1001" and item.resolution == "320x180" and item.has_audio
    assert link_mod.wait(lambda: all(lk.has_preview(r.thumb_key) for r in state().results), 10)
    state().kind = "image"
    state().query = ""
    assert link_mod.wait(lambda: [r.name for r in state().results] == ["ref.jpg"], 10)


def test_push_from_the_cli_lands_in_this_session(link_mod, served) -> None:
    bridge, ids, cat = served
    link_mod.link()
    assert link_mod.wait(lambda: state().connection == "connected", 10)
    r = subprocess.run([*CLI, "--catalog", str(cat), "push", str(ids["sh010.mov"]), "--to", SESSION, "--mode", "strip",
                        "--bridge", bridge.endpoint], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    scene = bpy.context.scene
    assert link_mod.wait(lambda: scene.sequence_editor is not None and len(scene.sequence_editor.strips_all) == 2, 10)
    assert {s.type for s in scene.sequence_editor.strips_all} == {"MOVIE", "SOUND"}
    assert (scene.render.fps, scene.render.fps_base, scene.frame_end) == (24000, 1001.0, 24)
    # Receiving switched off: pushes are ignored.
    state().receive_shots = False
    r = subprocess.run([*CLI, "--catalog", str(cat), "push", str(ids["sh020.mp4"]), "--to", SESSION, "--bridge",
                        bridge.endpoint], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    link_mod.wait(lambda: False, 1.0)
    assert len(bpy.data.movieclips) == 0


def test_import_fetches_through_the_bridge_when_needed(link_mod, served, tmp_path: Path) -> None:
    _bridge, ids, _cat = served
    link_mod.link()
    assert link_mod.wait(lambda: state().connection == "connected", 10)
    result = bpy.ops.mediaidx.import_plate(asset_id=ids["sh020.mp4"], mode="clip", force_fetch=True, timeout=60)
    assert result == {"FINISHED"}
    (clip,) = bpy.data.movieclips
    cached = Path(bpy.path.abspath(clip.filepath))
    assert cached.is_relative_to(tmp_path / "blender-cache") and cached.is_file()
    assert cached.read_bytes() == (tmp_path / "nas" / "sh020.mp4").read_bytes()
    scene = bpy.context.scene
    assert (scene.render.fps, scene.render.fps_base, scene.frame_end) == (30000, 1001.0, 30)


def test_a_dead_bridge_shows_as_disconnected_and_nothing_breaks(link_mod, served) -> None:
    bridge, _ids, _cat = served
    lk = link_mod.link()
    lk.client.dead_after_s = 1.0
    assert link_mod.wait(lambda: state().connection == "connected", 10)
    bridge.stop()
    assert link_mod.wait(lambda: state().connection == "disconnected", 10)
    state().message = ""
    state().query = "anything"  # searching while disconnected: a message in the panel, no exception
    assert link_mod.wait(lambda: "not connected" in state().message or "no answer" in state().message, 15)
    assert link_mod.pump() >= 0 and state().connection == "disconnected"
