"""`mediaidx track --dry-run`: every input checked as the real run checks it, every file the real run writes
listed (the .chan name with its filmback included), nothing written and the output folder not made."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bridge import MediaIndexer
from bridge.errors import MediaIdxError
from bridge.synth_tracking import make_plate
from bridge.track import plan_track, run_track

FRAMES = 48
HAS_BPY = importlib.util.find_spec("bpy") is not None


@pytest.fixture(scope="module")
def plates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A hero and a witness plate the solver solves (the ones tests/blender/test_tracking.py uses)."""
    folder = tmp_path_factory.mktemp("plates")
    return {"hero": make_plate(folder / "hero", "hero", frames=FRAMES).pattern,
            "witness": make_plate(folder / "witness", "witness", frames=FRAMES).pattern}


def mediaidx(*args: str, catalog: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge.cli.app", "--catalog", str(catalog), *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not HAS_BPY, reason="the real run needs bpy (Blender as a Python module)")
def test_the_plan_is_exactly_what_a_real_run_writes(plates: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "shots" / "sh010"
    args = ["track", plates["hero"], "--witness", plates["witness"], "--offset", "3", "--sensor-width", "23.76",
            "--save-blend", "--out", str(out), "--json"]
    dry = mediaidx(*args, "--dry-run", catalog=tmp_path / "cat.sqlite")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] is True
    assert not (tmp_path / "shots").exists()  # not even the parent of the output folder
    assert not (tmp_path / "cat.sqlite").exists()
    planned = {Path(p["path"]) for p in plan["plan"]}
    assert all(p["action"] == "write" for p in plan["plan"]) and {p.parent for p in planned} == {out}
    # The filmback is in the .chan name, and known before the solve: 23.76 mm wide, 640x360 square pixels.
    assert out / "hero_ZXY_23.76x13.4.chan" in planned and out / "witness1_ZXY_23.76x13.4.chan" in planned

    real = mediaidx(*args, catalog=tmp_path / "cat.sqlite")
    assert real.returncode == 0, real.stderr[-2000:]
    written = set(out.iterdir())
    assert written == planned
    manifest = json.loads((out / "shot.json").read_text())
    per_camera = {out / f for cam in manifest["cameras"] for f in cam["files"].values()}
    assert per_camera | {out / "shot.json", out / "shot.blend"} == planned
    hero_lens = manifest["cameras"][0]["lens"]
    assert (hero_lens["sensor_width_mm"], round(hero_lens["sensor_height_mm"], 3)) == (pytest.approx(23.76), 13.365)

    # A second dry run over the finished shot says which files it would replace.
    again = json.loads(mediaidx(*args, "--dry-run", catalog=tmp_path / "cat.sqlite").stdout)
    assert {Path(p["path"]) for p in again["plan"]} == planned
    assert all(p["reason"].endswith("replaces the file there") for p in again["plan"])


def test_the_plan_with_default_sensor_and_some_formats(plates: dict[str, str], tmp_path: Path) -> None:
    """Without --sensor-width the filmback is Blender's default 35 mm back: the names are still exact."""
    out = tmp_path / "out"
    plan = plan_track(plates["hero"], out, formats="chan,csv")
    assert [Path(p.path).name for p in plan] == ["hero_ZXY_35x19.7.chan", "hero_2d.csv", "hero_lens.json",
                                                 "hero_plate.json", "shot.json"]
    assert [p.kind for p in plan] == ["chan", "csv", "lens", "plate", "manifest"]
    assert not out.exists()


def test_a_catalog_id_resolves_to_its_plate(plates: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "library"
    folder.mkdir()
    for f in range(1, 4):
        shutil.copy(Path(plates["hero"]).with_name(f"hero.{f:04d}.png"), folder)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(folder)
        (asset,) = [a for a in ix.search(None, limit=10) if a.name == "hero.0001.png"]
    out = tmp_path / "out"
    r = mediaidx("track", str(asset.id), "--out", str(out), "--dry-run", "--json", catalog=tmp_path / "cat.sqlite")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["plan"]
    assert {p["source"] for p in plan if p["source"]} == {str(folder / "hero.0001.png")}
    assert not out.exists()
    r = mediaidx("track", "999", "--out", str(out), "--dry-run", catalog=tmp_path / "cat.sqlite")
    assert r.returncode != 0 and "no asset with id 999" in r.stderr and "Traceback" not in r.stderr


@pytest.fixture
def bad_inputs(tmp_path: Path) -> dict[str, Path]:
    Image.fromarray(np.zeros((36, 64, 3), np.uint8)).save(tmp_path / "lone.0001.png")
    (tmp_path / "notes.mov").write_text("not a movie")
    (tmp_path / "survey.json").write_text(json.dumps({"P1": {"hero": [[1, 2]]}}))
    (tmp_path / "blocker").write_text("x")
    return {"lone": tmp_path / "lone.0001.png", "text": tmp_path / "notes.mov", "survey": tmp_path / "survey.json",
            "blocker": tmp_path / "blocker"}


@pytest.mark.parametrize(("case", "message"), [
    ("missing plate", "no such file"),
    ("lone frame", r"lone\.0001\.png: no frames to track"),
    ("not media", r"notes\.mov: Blender cannot read it"),
    ("bad survey", r"survey .*is not \[frame, x, y\]"),
    ("bad fps", r"--fps 'fast' is not a frame rate"),
    ("bad sensor", r"--sensor-width -36 is not a sensor width in mm"),
    ("bad refine", r"--refine 'FOCLA'"),
    ("extra offset", "more --offset values than --witness plates"),
    ("out under a file", r"cannot create the output folder .*blocker is not a folder"),
    ("bad formats", r"--formats: unknown 'nuke'"),
])
def test_bad_input_fails_the_dry_run_in_one_line_and_writes_nothing(plates: dict[str, str], tmp_path: Path,
                                                                   bad_inputs: dict[str, Path], case: str,
                                                                   message: str) -> None:
    out = tmp_path / "out"
    hero = plates["hero"]
    extra: list[str] = []
    if case == "missing plate":
        hero = str(tmp_path / "nope.0001.exr")
    elif case == "lone frame":
        extra = ["--witness", str(bad_inputs["lone"])]
    elif case == "not media":
        hero = str(bad_inputs["text"])
    elif case == "bad survey":
        extra = ["--survey", str(bad_inputs["survey"])]
    elif case == "bad fps":
        extra = ["--fps", "fast"]
    elif case == "bad sensor":
        extra = ["--sensor-width", "-36"]
    elif case == "bad refine":
        extra = ["--refine", "FOCLA"]
    elif case == "extra offset":
        extra = ["--offset", "2"]
    elif case == "bad formats":
        extra = ["--formats", "chan,nuke"]
    else:
        out = bad_inputs["blocker"] / "out"
    r = mediaidx("track", hero, *extra, "--out", str(out), "--dry-run", catalog=tmp_path / "cat.sqlite")
    assert r.returncode in (1, 2), r.stdout
    assert "Traceback" not in r.stderr
    assert re.search(message, " ".join(r.stderr.split())), r.stderr
    assert not out.exists() and not (tmp_path / "cat.sqlite").exists()
    assert not r.stdout.strip()


def test_the_real_run_refuses_the_same_inputs_before_starting_blender(plates: dict[str, str], tmp_path: Path,
                                                                      bad_inputs: dict[str, Path]) -> None:
    """The dry run and the run share their checks: what the plan refuses, the run refuses, before a worker."""
    for kwargs, message in (({"witnesses": [str(bad_inputs["lone"])]}, "no frames to track"),
                            ({"sensor_width": 0.0}, "--sensor-width 0 is not a sensor width"),
                            ({"refine": "FOCAL+SHIFT"}, r"--refine 'FOCAL\+SHIFT'")):
        for call in (plan_track, run_track):
            with pytest.raises(MediaIdxError, match=message):
                call(plates["hero"], tmp_path / "out", **kwargs)  # type: ignore[operator]
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not HAS_BPY, reason="the real run needs bpy (Blender as a Python module)")
def test_formats_from_the_command_line_choose_the_exports(plates: dict[str, str], tmp_path: Path) -> None:
    """`mediaidx track --formats chan,json`: the plan and the run write those exports (plus lens, plate and
    shot.json) and nothing else; run_track took formats but the command had no way to pass them."""
    out = tmp_path / "out"
    args = ["track", plates["hero"], "--formats", "chan,json", "--out", str(out), "--json"]
    dry = mediaidx(*args, "--dry-run", catalog=tmp_path / "cat.sqlite")
    assert dry.returncode == 0, dry.stderr
    planned = {Path(p["path"]).name for p in json.loads(dry.stdout)["plan"]}
    assert planned == {"hero_ZXY_35x19.7.chan", "hero_2d.json", "hero_lens.json", "hero_plate.json", "shot.json"}
    real = mediaidx(*args, catalog=tmp_path / "cat.sqlite")
    assert real.returncode == 0, real.stderr[-2000:]
    assert {p.name for p in out.iterdir()} == planned
