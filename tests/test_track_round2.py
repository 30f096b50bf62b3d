"""Second review of the tracking and import changes, bpy-free: a plate given after a gap is planned from its own
run of frames, an earlier shot.json can only make a rerun remove names the export could have written (never
another spelling of a kept file, shot.json or shot.blend), a still our probe cannot read passes the dry run
only when it is Cineon, a damaged first frame does not take its sequence down in `mediaidx blend`, the plan
says which of a witness's earlier files go when it does not solve, and on auto a dot before the frame number
beats a camera-like name."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blender_mediaidx.core.sequences import clip_frame_count, find_sequence, numbered_sequence
from blender_mediaidx.tracking import plan
from bridge import MediaIndexer
from bridge.blend import plan_blends
from bridge.errors import MediaIdxError
from bridge.track import plan_track, plate_facts


def frames(folder: Path, stem: str, numbers: tuple[int, ...], size: tuple[int, int] = (64, 36)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        Image.fromarray(np.full((size[1], size[0], 3), 10 * n % 255, np.uint8)).save(folder / f"{stem}.{n:04d}.png")
    return folder


# 1. a plate given by a frame after a gap


def test_a_frame_after_a_gap_is_tracked_from_the_first_frame_of_its_own_run(tmp_path: Path) -> None:
    """plate.0001-0003 and 0010-0013, plate.0011 given: the worker used to load plate.0001, whose clip stops at
    0003, so none of the frames asked for was tracked."""
    d = frames(tmp_path, "plate", (1, 2, 3, 10, 11, 12, 13))
    first = plan.clip_first_image(str(d / "plate.0011.png"))
    assert os.path.basename(first) == "plate.0010.png"
    assert plan.clip_frame_start(str(d / "plate.0011.png")) == 10
    assert clip_frame_count(first) == 4
    # before the gap: the sequence's own first
    assert os.path.basename(plan.clip_first_image(str(d / "plate.0002.png"))) == "plate.0001.png"
    assert plan.clip_frame_start(str(d / "plate.0002.png")) == 1
    # a movie or a lone still is loaded as given
    (tmp_path / "lone.0005.png").write_bytes((d / "plate.0001.png").read_bytes())
    assert plan.clip_first_image(str(tmp_path / "lone.0005.png")) == str(tmp_path / "lone.0005.png")


def test_the_dry_run_of_a_plate_after_a_gap_counts_its_own_run(tmp_path: Path) -> None:
    d = frames(tmp_path, "plate", (1, 2, 3, 10, 11))
    facts = plate_facts(str(d / "plate.0011.png"))
    assert (facts.width, facts.height) == (64, 36)
    # a single frame after the gap is one frame to Blender's clip: refused as the worker refuses it
    frames(tmp_path / "one", "plate", (1, 2, 3, 10))
    with pytest.raises(MediaIdxError, match="no frames to track"):
        plate_facts(str(tmp_path / "one" / "plate.0010.png"))


# 2. what an earlier shot.json may make a rerun remove


def _manifest(out: Path, cameras: dict[str, dict[str, str]], *, create: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "shot.json").write_text(json.dumps({"schema": plan.SHOT_SCHEMA, "cameras": [
        {"name": name, "files": files} for name, files in cameras.items()]}))
    if create:
        for files in cameras.values():
            for fname in files.values():
                if "/" not in fname and "\\" not in fname and fname not in ("shot.json",):
                    with contextlib.suppress(OSError):
                        (out / fname).write_text("old")


@pytest.mark.parametrize("name", [
    "C:evil.txt",                       # a drive-relative path on Windows: D:/shots/sh010 / 'C:evil.txt' is C:
    "hero_lens.json.",                  # Windows drops a trailing dot or space: the file just written
    "hero_lens.json ",
    "HERO_LENS.JSON",                   # not a name the export gives (another case)
    "hero_lens.json:Zone.Identifier",   # an NTFS stream of the file just written
    "x:Zone.Identifier",
    "CON", "CON.fbx", "hero/../CON",    # Windows devices
    "shot.blend", "shot.json",          # never an export
    "notes.txt", "hero_notes.txt",      # not a name the export gives
    "other_lens.json",                  # a camera the manifest does not name
    ".", "..", "",
])
def test_an_earlier_manifest_cannot_make_a_rerun_remove_other_names(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    _manifest(out, {"hero": {"bad": name, "ok": "hero_2d.csv"}})
    assert plan.previous_exports(out) == ["hero_2d.csv"]


def test_names_the_export_gives_a_camera_of_the_manifest_are_previous_exports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = plan.camera_files("witness1", 35.0, 19.7)
    files_hero = plan.camera_files("hero", 36.0, 20.25)
    _manifest(out, {"hero": files_hero, "witness1": files})
    assert set(plan.previous_exports(out)) == set(files.values()) | set(files_hero.values())


def test_a_rerun_keeps_a_kept_file_under_another_case_or_another_name(tmp_path: Path) -> None:
    """On macOS and Windows HERO_2D.CSV is hero_2d.csv: a manifest listing one spelling, a run writing the
    other, used to remove the file just written. A hard link is the same file too."""
    out = tmp_path / "out"
    _manifest(out, {"hero": {"csv": "hero_2d.csv", "json": "hero_2d.json", "abc": "hero.abc"}})
    os.unlink(out / "hero.abc")
    os.link(out / "hero_2d.json", out / "hero.abc")  # the same file as one the run keeps
    previous = plan.previous_exports(out)
    kept = {"HERO_2D.CSV", "hero_2d.json", "shot.json"}
    assert plan.stale_exports(out, previous, kept) == []
    assert plan.remove_stale_exports(out, previous, kept) == []
    assert (out / "hero_2d.csv").exists() and (out / "hero.abc").exists()


def test_the_plan_never_lists_shot_blend_to_remove(tmp_path: Path) -> None:
    """Without --save-blend the plan listed an earlier shot.blend (named by the manifest) as removed while the
    run kept it."""
    d = frames(tmp_path, "plate", (1, 2, 3))
    out = tmp_path / "out"
    _manifest(out, {"hero": {"blend": "shot.blend", "csv": "hero_2d.csv"}, "shot": {"blend": "shot.blend"}})
    items = plan_track(str(d / "plate.0001.png"), out, formats="chan")
    removes = {Path(i.path).name for i in items if i.action == "remove"}
    assert removes == {"hero_2d.csv"}
    assert plan.stale_exports(out, ["shot.blend", "shot.json"], set()) == []


# 3. a still our probe cannot read


def test_stills_our_probe_cannot_read_are_refused_unless_cineon(tmp_path: Path) -> None:
    """Text bytes named .png and empty .jpg files passed the dry run ('hero_ZXY_35x?.chan') while the worker
    then stopped with 'no frames to track'."""
    c = tmp_path / "corrupt"
    c.mkdir()
    for n in (1, 2, 3):
        (c / f"plate.{n:04d}.png").write_bytes(b"not a png at all" * 10)
        (c / f"empty.{n:04d}.jpg").write_bytes(b"")
        (c / f"fake.{n:04d}.cin").write_bytes(b"not a cineon file" * 10)
    for name in ("plate.0001.png", "empty.0001.jpg", "fake.0001.cin"):
        with pytest.raises(MediaIdxError, match="Blender cannot read it") as exc:
            plan_track(str(c / name), tmp_path / "out", formats="chan")
        assert "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("magic", [b"\x80\x2a\x5f\xd7", b"\xd7\x5f\x2a\x80"])
def test_a_cineon_sequence_is_planned_with_its_size_from_the_run(tmp_path: Path, magic: bytes) -> None:
    for n in (1, 2, 3):
        (tmp_path / f"scan.{n:04d}.cin").write_bytes(magic + bytes(2044))
    items = plan_track(str(tmp_path / "scan.0001.cin"), tmp_path / "out", formats="chan")
    assert Path(items[0].path).name == f"hero_ZXY_35x{plan.UNKNOWN}.chan"


# 4. `mediaidx blend` and a damaged first frame


def test_a_damaged_first_frame_does_not_take_its_sequence_down(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "shot.0001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    for n in (2, 3, 4):
        Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(root / f"shot.{n:04d}.png")
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(root)
        assets = {a.name: a for a in ix.search(None, limit=10)}
        assert assets["shot.0001.png"].status == "failed"
        ids = [assets[f"shot.{n:04d}.png"].id for n in (1, 2, 3, 4)]
        items = plan_blends(ix, ids, tmp_path / "out")
    writes = [i for i in items if i.action == "write"]
    assert len(writes) == 1 and "image sequence" in (writes[0].reason or "")
    assert writes[0].id == assets["shot.0002.png"].id
    skips = [i for i in items if i.action == "skip"]
    assert {Path(i.path).name for i in skips} == {"shot.0003.png", "shot.0004.png"}
    assert all(f"asset {assets['shot.0002.png'].id}" in (i.reason or "") for i in skips)
    fails = [i for i in items if i.action == "fail"]
    assert [Path(i.path).name for i in fails] == ["shot.0001.png"]


# 5. a witness that does not solve, and fewer formats


def test_the_plan_says_a_witness_s_earlier_files_go_when_it_does_not_solve(tmp_path: Path) -> None:
    hero = frames(tmp_path / "h", "hero", (1, 2, 3))
    wit = frames(tmp_path / "w", "wit", (1, 2, 3))
    out = tmp_path / "out"
    _manifest(out, {"hero": {"csv": "hero_2d.csv"}, "witness1": {"csv": "witness1_2d.csv"}})
    (out / "witness1_lens.json").write_text("someone's, not in the manifest")
    items = plan_track(str(hero / "hero.0001.png"), out, witnesses=[str(wit / "wit.0001.png")], formats="csv")
    by = {Path(i.path).name: i.reason or "" for i in items if i.action == "write"}
    assert "(the earlier file: removed if it does not solve)" in by["witness1_2d.csv"]
    assert by["witness1_2d.csv"].endswith("replaces the file there")
    assert "removed if it does not solve" not in by["hero_2d.csv"]  # the hero's failure stops the run
    assert "removed if it does not solve" not in by["witness1_lens.json"]  # not the earlier run's: stays


def test_track_formats_help_says_a_rerun_with_fewer_formats_removes_exports() -> None:
    res = subprocess.run([sys.executable, "-m", "bridge.cli.app", "track", "--help"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "COLUMNS": "300", "NO_COLOR": "1"})
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.replace("│", " ").split())
    assert "with fewer formats removes the exports the earlier run wrote" in text


# 6. auto: the dot convention beats a camera-like name


def _touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")
    return folder


@pytest.mark.parametrize("stem", ["img.", "IMG_plate.", "DJI_0001_plate.", "dsc_sh010.", "GOPR_shot."])
@pytest.mark.parametrize("ext", ["exr", "png", "jpg"])
def test_a_frame_number_set_off_by_a_dot_is_a_plate_whatever_the_name(tmp_path: Path, stem: str, ext: str) -> None:
    d = _touch(tmp_path, *(f"{stem}{n}.{ext}" for n in (1001, 1002, 1003)))
    seq = find_sequence(str(d / f"{stem}1002.{ext}"))
    assert seq is not None and (seq.first, seq.last) == (1001, 1003)


@pytest.mark.parametrize(("names", "reason"), [
    (("IMG_0001.PNG", "IMG_0002.PNG"), "named like camera photos"),
    (("DJI_0001.JPG", "DJI_0002.JPG"), "named like camera photos"),
    (("Screenshot 2023-11-01 at 10.10.10.png", "Screenshot 2023-11-01 at 10.10.11.png"), "named like screenshots"),
    (("shot.10.png", "shot.42.png"), "numbered far apart"),
    (("photo_0001.webp", "photo_0002.webp"), "not named like a plate"),
])
def test_one_rule_gives_the_reason_numbered_siblings_stay_single(tmp_path: Path, names: tuple[str, ...],
                                                                 reason: str) -> None:
    from blender_mediaidx.core.sequences import plate_naming_reason

    d = _touch(tmp_path, *names)
    seq = numbered_sequence(str(d / names[0]))
    assert seq is not None
    assert (plate_naming_reason(seq) or "").startswith(reason)
    assert find_sequence(str(d / names[0])) is None


def test_the_importer_asks_the_rule_for_its_reason_not_a_copy_of_it() -> None:
    """importer._why_single duplicated plate_naming's tests and imported the private _CAMERA_NAME."""
    source = (Path(__file__).resolve().parents[1] / "blender_mediaidx" / "importer.py").read_text()
    assert "_CAMERA_NAME" not in source and "plate_naming_reason" in source


# minor: the EXR check reads 4 bytes of a still that is not an EXR


def test_the_exr_check_reads_four_bytes_of_a_file_that_is_not_an_exr(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2 << 20))
    read: list[int] = []
    real_open = open

    class Counting:
        def __init__(self, f):
            self.f = f

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def read(self, n: int = -1) -> bytes:
            data = self.f.read(n)
            read.append(len(data))
            return data

    monkeypatch.setattr(plan, "open", lambda p, mode="r": Counting(real_open(p, mode)), raising=False)
    assert plan.exr_data_window(str(big)) is None
    assert sum(read) <= 4


def test_walking_back_to_the_run_start_follows_fewer_digits(tmp_path: Path) -> None:
    """frame1..frame20.png (ffmpeg's frame%d.png) given as frame15, and plate.990..plate.1010 given as plate.1005:
    the walk back looked only for the given width (frame09, plate.0999) and tracked part of the plate; Blender
    reads forward from frame1 / plate.990 with that width as a minimum, so those are the run's start."""
    for n in range(1, 21):
        (tmp_path / f"frame{n}.png").write_bytes(b"x")
    for n in range(990, 1011):
        (tmp_path / f"plate.{n:03d}.png").write_bytes(b"x")
    assert plan.run_start(str(tmp_path / "frame15.png")) == (str(tmp_path / "frame1.png"), 1)
    assert clip_frame_count(str(tmp_path / "frame1.png")) == 20
    assert plan.run_start(str(tmp_path / "plate.1005.png")) == (str(tmp_path / "plate.990.png"), 990)
    assert clip_frame_count(str(tmp_path / "plate.990.png")) == 21


def test_blend_groups_unprobed_frames_of_a_sequence(tmp_path: Path) -> None:
    """Frames of a `scan --no-probe` are 'unprobed', not 'ok': they were each built as a shot of their own, five
    .blend files each holding the whole sequence."""
    from bridge.blend import one_per_sequence

    d = frames(tmp_path / "shot", "shot", (1001, 1002, 1003, 1004, 1005))
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(d, probe=False)
        ids = sorted(a.id for a in ix.search(None, limit=10, status=None))
        assert {ix.get(i).status for i in ids} == {"unprobed"}
        kept, left = one_per_sequence(ix, ids)
    assert kept == ids[:1] and set(left) == set(ids[1:])
