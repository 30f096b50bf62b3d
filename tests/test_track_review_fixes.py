"""Review fixes to `mediaidx track --dry-run` and `mediaidx blend --dry-run`, bpy-free: an EXR with overscan is
named by its data window (the size Blender's clip reads), a sequence given by a later frame is counted from its
first, a previous run's exports this run does not write are listed as `remove`, and a still image on a remote
root planned under --sequence sequence fails as the worker does."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bridge import MediaIndexer
from bridge.blend import plan_blends
from bridge.track import plan_track, plate_facts


def _attr(name: str, typ: str, data: bytes) -> bytes:
    return name.encode() + b"\0" + typ.encode() + b"\0" + struct.pack("<i", len(data)) + data


def write_exr(path: Path, data_window: tuple[int, int, int, int], display_window: tuple[int, int, int, int]) -> None:
    """A scanline, uncompressed half-float RGB OpenEXR with the given windows (min x, min y, max x, max y)."""
    x0, y0, x1, y1 = data_window
    w, h = x1 - x0 + 1, y1 - y0 + 1
    chans = b"".join(c.encode() + b"\0" + struct.pack("<iB3xii", 1, 0, 1, 1) for c in "BGR") + b"\0"
    header = b"".join([
        _attr("channels", "chlist", chans), _attr("compression", "compression", b"\0"),
        _attr("dataWindow", "box2i", struct.pack("<4i", *data_window)),
        _attr("displayWindow", "box2i", struct.pack("<4i", *display_window)),
        _attr("lineOrder", "lineOrder", b"\0"), _attr("pixelAspectRatio", "float", struct.pack("<f", 1.0)),
        _attr("screenWindowCenter", "v2f", struct.pack("<2f", 0, 0)),
        _attr("screenWindowWidth", "float", struct.pack("<f", 1))]) + b"\0"
    head = struct.pack("<ii", 20000630, 2) + header
    line = np.full(w * 3, 0.5, np.float16).tobytes()
    offset = len(head) + 8 * h
    table, chunks = [], []
    for i in range(h):
        chunk = struct.pack("<ii", y0 + i, len(line)) + line
        table.append(offset)
        offset += len(chunk)
        chunks.append(chunk)
    path.write_bytes(head + struct.pack(f"<{h}Q", *table) + b"".join(chunks))


@pytest.fixture
def overscan(tmp_path: Path) -> Path:
    """plate.0001-0003.exr: 64x36 display window, 96x48 data window (16 px overscan left, 6 below)."""
    folder = tmp_path / "over"
    folder.mkdir()
    for n in (1, 2, 3):
        write_exr(folder / f"plate.{n:04d}.exr", (-16, -6, 79, 41), (0, 0, 63, 35))
    return folder


def test_an_overscan_exr_is_planned_at_its_data_window(overscan: Path, tmp_path: Path) -> None:
    """Blender's clip is 96x48 (the data window): the run writes hero_ZXY_35x17.5.chan; the plan used to name
    the display window's hero_ZXY_35x19.7.chan."""
    from blender_mediaidx.tracking.plan import exr_data_window

    plate = str(overscan / "plate.0001.exr")
    assert exr_data_window(plate) == (96, 48)
    facts = plate_facts(plate)
    assert (facts.width, facts.height) == (96, 48)
    plan = plan_track(plate, tmp_path / "out", formats="chan")
    assert Path(plan[0].path).name == "hero_ZXY_35x17.5.chan"
    assert "96x48" in (plan[0].reason or "")


def test_the_data_window_parse_refuses_what_is_not_an_exr_header(tmp_path: Path) -> None:
    from blender_mediaidx.tracking.plan import exr_data_window

    png = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(png)
    short = tmp_path / "short.exr"
    short.write_bytes(struct.pack("<ii", 20000630, 2) + b"dataWindow\0box2i\0" + struct.pack("<i", 16) + b"\0" * 4)
    assert exr_data_window(str(png)) is None and exr_data_window(str(short)) is None
    assert exr_data_window(str(tmp_path / "none.exr")) is None


def test_a_sequence_given_by_a_later_frame_counts_from_its_first(tmp_path: Path) -> None:
    """The worker loads plate.0001 for plate.0003 of 0001-0003 (three frames); the plan used to count from
    0003 alone and refuse it with "no frames to track"."""
    for n in (1, 2, 3):
        Image.fromarray(np.zeros((36, 64, 3), np.uint8)).save(tmp_path / f"plate.{n:04d}.png")
    facts = plate_facts(str(tmp_path / "plate.0003.png"))
    assert (facts.width, facts.height) == (64, 36)


def _previous_shot(out: Path, files: dict[str, str], schema: str = "mediaidx.shot/1") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "shot.json").write_text(json.dumps({"schema": schema, "cameras": [{"name": "hero", "files": files}, {"name": "witness1", "files": {}}]}))
    for name in files.values():
        target = out / name
        if target.parent == out and name != "shot.json":
            target.write_text("old")


def test_the_plan_removes_what_the_previous_manifest_listed_and_nothing_else(tmp_path: Path) -> None:
    from blender_mediaidx.tracking.plan import previous_exports

    for n in (1, 2, 3):
        Image.fromarray(np.zeros((36, 64, 3), np.uint8)).save(tmp_path / f"plate.{n:04d}.png")
    out = tmp_path / "out"
    (tmp_path / "outside.txt").write_text("not ours")
    _previous_shot(out, {"chan": "hero_ZXY_36x20.2.chan", "csv": "hero_2d.csv", "w": "witness1_2d.csv",
                         "lens": "hero_lens.json", "up": "../outside.txt", "self": "shot.json", "gone": "gone.abc"})
    (out / "gone.abc").unlink()  # listed, but no longer there
    (out / "notes.txt").write_text("the artist's")
    plan = plan_track(str(tmp_path / "plate.0001.png"), out, formats="chan,csv")
    removes = {Path(p.path).name: p for p in plan if p.action == "remove"}
    assert set(removes) == {"hero_ZXY_36x20.2.chan", "witness1_2d.csv"}  # gone.abc is not there: nothing to do
    assert all(Path(p.path).parent == out for p in removes.values())
    assert "previous shot.json" in (removes["witness1_2d.csv"].reason or "")
    writes = {Path(p.path).name for p in plan if p.action == "write"}
    assert writes == {"hero_ZXY_35x19.7.chan", "hero_2d.csv", "hero_lens.json", "hero_plate.json", "shot.json"}
    assert (out / "notes.txt").exists() and (tmp_path / "outside.txt").exists()  # a plan removes nothing

    # A shot.json that is not ours (another schema): nothing of it is ever removed.
    _previous_shot(out, {"w": "witness1_2d.csv"}, schema="someone.else/2")
    assert previous_exports(out) == []
    assert not [p for p in plan_track(str(tmp_path / "plate.0001.png"), out, formats="chan") if p.action == "remove"]


def test_a_remote_still_under_sequence_sequence_is_planned_to_fail_as_the_worker_does(tmp_path: Path) -> None:
    """A file not on this machine comes through the bridge alone: the plan said "single image" while the worker
    then failed "not an image sequence"."""
    root = tmp_path / "nas"
    root.mkdir()
    for n in (1, 2):
        Image.new("RGB", (32, 24)).save(root / f"shot.{n:04d}.png")
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(root)
        (asset,) = [a for a in ix.search(None, limit=10) if a.name == "shot.0001.png"]
        for n in (1, 2):  # the root is remote now: the catalog's paths are not files here
            (root / f"shot.{n:04d}.png").unlink()
        (item,) = plan_blends(ix, [asset.id], tmp_path / "out", sequence="sequence")
        assert item.action == "fail" and "only this one file comes through the bridge" in (item.reason or "")
        (item,) = plan_blends(ix, [asset.id], tmp_path / "out", sequence="auto")
        assert item.action == "write" and "single image (fetched through the bridge)" in (item.reason or "")
