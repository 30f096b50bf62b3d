"""Which folder under backup_root each root's copies go to, temporary names that every backup disk accepts,
and part files of killed backups that do not pile up (real files, real SQLite catalog)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import xxhash

from bridge import MediaIndexer
from bridge.library import fileops
from bridge.library.fileops import verified_copy


def make_root(folder: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def backup(ix: MediaIndexer, dest: Path, dry_run: bool = False) -> dict:
    dest.mkdir(parents=True, exist_ok=True)
    (r,) = ix.run_workflow({"action": "backup", "backup_root": str(dest)}, dry_run=dry_run)
    assert r["status"] in ("ok", "failed"), r
    return r


def actions(r: dict, bk: Path) -> list[tuple[str, str]]:
    return sorted((p["action"], os.path.relpath(p["path"], bk)) for p in r["result"]["plan"])


def files(bk: Path) -> list[str]:
    return sorted(str(p.relative_to(bk)) for p in bk.rglob("*") if p.is_file())


def suffix(url: Path) -> str:
    return xxhash.xxh32_hexdigest(str(url).encode())[:6]


def test_a_backup_made_to_a_folder_inside_backup_root_does_not_name_the_roots_folder(tmp_path: Path) -> None:
    """Backed up to bk/weekly, then to bk: the root's folder in bk is its own name, not 'weekly' (which
    would put its files inside the other backup's tree)."""
    a = make_root(tmp_path / "src" / "footage", {"clips/A.mov": os.urandom(3000)})
    bk = tmp_path / "bk"
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(a, probe=False)
        assert actions(backup(ix, bk / "weekly"), bk) == [("copy", "weekly/footage/clips/A.mov")]
        dry = backup(ix, bk, dry_run=True)
        r = backup(ix, bk)
    assert actions(dry, bk) == actions(r, bk) == [("copy", "footage/clips/A.mov")]
    assert files(bk) == ["footage/clips/A.mov", "weekly/footage/clips/A.mov"]


def test_a_file_moved_into_another_root_does_not_move_that_roots_folder(tmp_path: Path) -> None:
    """A file moved from the card into the (older) archive keeps its id and backup records; the archive
    must not take the card's folder (its whole tree would be copied into card/, the card's again)."""
    arch = make_root(tmp_path / "nas" / "archive", {"old/X.mov": os.urandom(4000)})
    card = make_root(tmp_path / "mnt" / "card", {"clips/A.mov": os.urandom(3000), "clips/B.mov": os.urandom(3500)})
    bk = tmp_path / "bk"
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(arch, probe=False)
        ix.scan(card, probe=False)
        assert backup(ix, bk)["result"]["copied"] == 3
        (arch / "ingest").mkdir()
        shutil.move(card / "clips" / "A.mov", arch / "ingest" / "A.mov")
        (arch / "new").mkdir()
        (arch / "new" / "N.mov").write_bytes(os.urandom(5000))
        assert ix.scan(card, arch, probe=False).counts["moved"] == 1
        dry = backup(ix, bk, dry_run=True)
        r = backup(ix, bk)
    assert actions(dry, bk) == actions(r, bk) == [
        ("copy", "archive/ingest/A.mov"), ("copy", "archive/new/N.mov"),
        ("skip", "archive/old/X.mov"), ("skip", "card/clips/B.mov")]
    assert files(bk) == ["archive/ingest/A.mov", "archive/new/N.mov", "archive/old/X.mov",
                         "card/clips/A.mov", "card/clips/B.mov"]


def test_a_new_catalog_never_gives_one_card_another_cards_folder(tmp_path: Path) -> None:
    """Two cards called DCIM, in a catalog made anew: no record says whose the bare DCIM/ is, so each
    gets its own suffixed folder, and card B's files never mix into card A's old folder (nor conflict)."""
    card_a = make_root(tmp_path / "media" / "a" / "DCIM",
                       {"100CANON/IMG_0001.JPG": os.urandom(3000), "100CANON/IMG_0002.JPG": os.urandom(3000)})
    bk = tmp_path / "bk"
    with MediaIndexer(tmp_path / "cat1.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(card_a, probe=False)
        assert actions(backup(ix, bk), bk) == [("copy", "DCIM/100CANON/IMG_0001.JPG"),
                                               ("copy", "DCIM/100CANON/IMG_0002.JPG")]
    card_b = make_root(tmp_path / "media" / "b" / "DCIM",
                       {"100CANON/IMG_0001.JPG": os.urandom(2000), "100CANON/IMG_0009.JPG": os.urandom(2000)})
    with MediaIndexer(tmp_path / "cat2.sqlite", cache_dir=tmp_path / "cache2") as ix:
        ix.scan(card_b, probe=False)
        ix.scan(card_a, probe=False)
        dry = backup(ix, bk, dry_run=True)
        r = backup(ix, bk)
    fa, fb = f"DCIM-{suffix(card_a)}", f"DCIM-{suffix(card_b)}"
    assert r["result"]["conflicts"] == 0
    assert actions(dry, bk) == actions(r, bk) == sorted(
        ("copy", f"{f}/100CANON/{n}") for f, n in ((fa, "IMG_0001.JPG"), (fa, "IMG_0002.JPG"),
                                                   (fb, "IMG_0001.JPG"), (fb, "IMG_0009.JPG")))
    assert sorted(os.listdir(bk / "DCIM" / "100CANON")) == ["IMG_0001.JPG", "IMG_0002.JPG"]  # untouched
    assert (bk / fb / "100CANON" / "IMG_0001.JPG").read_bytes() == (card_b / "100CANON" / "IMG_0001.JPG").read_bytes()


def test_a_root_added_later_leaves_the_first_root_its_bare_folder(tmp_path: Path) -> None:
    """The first root keeps the bare folder its copies went to, also when it was since backed up to a
    folder inside backup_root too; the root added later with the same last name gets the suffix."""
    a = make_root(tmp_path / "mnt" / "footage", {"clips/A.mov": os.urandom(3000)})
    b = make_root(tmp_path / "nas" / "footage", {"clips/B.mov": os.urandom(2000)})
    bk = tmp_path / "bk"
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(a, probe=False)
        assert actions(backup(ix, bk), bk) == [("copy", "footage/clips/A.mov")]
        assert actions(backup(ix, bk / "weekly"), bk) == [("copy", "weekly/footage/clips/A.mov")]
        ix.scan(b, probe=False)
        dry = backup(ix, bk, dry_run=True)
        r = backup(ix, bk)
    assert actions(dry, bk) == actions(r, bk) == [
        ("copy", f"footage-{suffix(b)}/clips/B.mov"), ("skip", "footage/clips/A.mov")]


def test_the_temporary_name_of_a_long_cjk_name_is_valid_utf8(tmp_path: Path) -> None:
    """exFAT, NTFS, APFS and SMB shares refuse a name holding half a UTF-8 character: the temporary name
    is cut on a character boundary (and stays within NAME_MAX); a name that is not UTF-8 keeps its bytes."""
    for name in ("a" + "日" * 70 + ".mov", "日本語" * 27 + ".mov", "x" * 119 + "é" * 20):
        dest = tmp_path / name
        fd, tmp = fileops._create_temp(dest)
        os.close(fd)
        raw = os.fsencode(tmp.name)
        assert len(raw) <= 255
        text = raw.decode("utf-8")  # raises on half a character
        assert text.startswith("." + name[:30]) and text.endswith(".mediaidx-part")
        tmp.unlink()
    dest = Path(os.fsdecode(os.fsencode(tmp_path) + b"/" + b"\xff\xfe" * 100 + b".mov"))
    (src := tmp_path / "src").write_bytes(b"data")
    verified_copy(src, dest)
    assert Path(dest).read_bytes() == b"data"
    fd, tmp = fileops._create_temp(dest)
    os.close(fd)
    assert os.fsencode(tmp.name).startswith(b"." + b"\xff\xfe" * 60 + b".")  # 120 bytes, none lost or changed


def test_an_old_part_file_is_removed_by_the_next_copy_and_a_fresh_one_is_not(tmp_path: Path, monkeypatch) -> None:
    """A killed backup's part files would stay for good; the next copy of that file removes those not
    written for a day, never a younger one (a backup may still be writing it) nor another file's. Age is
    judged by mtime and ctime together (a live copy carries its source's old mtime) and a test cannot set a
    ctime in the past, so fileops' clock is moved two days ahead instead."""
    import types

    shift = 2 * 86400
    monkeypatch.setattr(fileops, "time", types.SimpleNamespace(time=lambda: time.time() + shift,
                                                               monotonic=time.monotonic))
    root = make_root(tmp_path / "nas", {"clips/A.mov": os.urandom(5000), "clips/B.mov": os.urandom(5000)})
    clips = tmp_path / "bk" / "nas" / "clips"
    clips.mkdir(parents=True)
    old = clips / ".A.mov.0123456789ab.mediaidx-part"
    legacy = clips / ".A.mov.mediaidx-part"
    fresh = clips / ".A.mov.ba9876543210.mediaidx-part"
    other = clips / ".B.mov.0123456789ab.mediaidx-part"
    mine = clips / ".A.mov.notes.mediaidx-part"  # not a name a copy writes
    two_days = time.time() - 2 * 86400
    for p in (old, legacy, fresh, other, mine):
        p.write_bytes(b"half a clip")
        if p is not fresh:
            os.utime(p, (two_days, two_days))
    os.utime(fresh, (time.time() + shift - 23 * 3600,) * 2)  # 23 hours before the moved clock
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(root, probe=False)
        (dry,) = ix.run_workflow({"action": "backup", "backup_root": str(tmp_path / "bk"),
                                  "query": "A.mov"}, dry_run=True)
        assert [p["action"] for p in dry["result"]["plan"]] == ["copy"]
        assert old.exists() and legacy.exists()  # the dry run removes nothing
        (r,) = ix.run_workflow({"action": "backup", "backup_root": str(tmp_path / "bk"), "query": "A.mov"})
    assert r["status"] == "ok" and r["result"]["copied"] == 1, r
    assert (clips / "A.mov").read_bytes() == (root / "clips" / "A.mov").read_bytes()
    assert not old.exists() and not legacy.exists()
    assert fresh.exists() and other.exists() and mine.exists()


def test_files_moved_into_another_root_under_the_same_path_do_not_move_its_folder(tmp_path: Path) -> None:
    """card/clips/A.mov and B.mov moved to archive/clips/ keep their records, whose destinations end with their
    new path too (bk/card/clips/A.mov): they voted 'card' for the archive, which took the card's folder."""
    arch = make_root(tmp_path / "nas" / "archive", {"old/X.mov": os.urandom(4000)})
    card = make_root(tmp_path / "mnt" / "card", {f"clips/{n}.mov": os.urandom(3000 + i)
                                                  for i, n in enumerate("ABC")})
    bk = tmp_path / "bk"
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(arch, probe=False)
        ix.scan(card, probe=False)
        assert backup(ix, bk)["result"]["copied"] == 4
        (arch / "clips").mkdir()
        for n in "AB":
            shutil.move(card / "clips" / f"{n}.mov", arch / "clips" / f"{n}.mov")
        assert ix.scan(card, arch, probe=False).counts["moved"] == 2
        r = backup(ix, bk)
    assert actions(r, bk) == [("copy", "archive/clips/A.mov"), ("copy", "archive/clips/B.mov"),
                              ("skip", "archive/old/X.mov"), ("skip", "card/clips/C.mov")]


def test_a_live_copy_carrying_its_sources_old_mtime_is_not_a_stale_part(tmp_path: Path) -> None:
    """A copy being verified already has its source's mtime (weeks old); another copy placing a file of the
    same name removed it as stale, and the first copy failed with ENOENT."""
    dest = tmp_path / "A.mov"
    live = tmp_path / ".A.mov.0123456789ab.mediaidx-part"
    live.write_bytes(b"being verified")
    weeks = time.time() - 30 * 86400
    os.utime(live, (weeks, weeks))  # what copystat does before the read-back
    dest.write_bytes(b"placed by another copy")
    assert fileops.remove_stale_parts(dest) == [] and live.exists()
