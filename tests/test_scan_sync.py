"""Sync by metadata: adds, changes, moves, missing files, user data surviving, dry runs that change nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from bridge import MediaIndexer, synth
from bridge.errors import RootUnavailableError


def write(path: Path, data: bytes = b"x" * 1000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under folder with its sha256: a dry run must leave this identical."""
    out = {}
    if folder.exists():
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def ix(tmp_path: Path) -> MediaIndexer:
    with MediaIndexer(tmp_path / "cat" / "catalog.sqlite", cache_dir=tmp_path / "cache") as indexer:
        yield indexer


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    """Three real (tiny) media files, a non-media file and a hidden folder."""
    root = tmp_path / "lib"
    (root / "day1").mkdir(parents=True)
    (root / "day2").mkdir()
    synth.make_video(root / "day1" / "a.mov", frames=6, width=64, height=48, audio=synth.tone())
    synth.make_video(root / "day1" / "b.mp4", frames=8, width=64, height=48, fps=30)
    synth.make_image(root / "day2" / "c.jpg", width=64, height=48)
    write(root / "day2" / "notes.txt", b"not media")
    write(root / ".hidden" / "d.mov", os.urandom(100))
    return root


def ids_by_name(ix: MediaIndexer) -> dict[str, int]:
    return {a.name: a.id for a in ix.search(limit=1000)}


def test_first_scan_then_unchanged(ix: MediaIndexer, lib: Path) -> None:
    s = ix.scan(lib, probe=False)
    assert s.counts == {"added": 3, "changed": 0, "moved": 0, "missing": 0, "unchanged": 0, "failed": 0}
    assert sorted(a.relpath for a in ix.search(limit=100)) == ["day1/a.mov", "day1/b.mp4", "day2/c.jpg"]
    again = ix.scan(lib, probe=False)
    assert again.counts == {"added": 0, "changed": 0, "moved": 0, "missing": 0, "unchanged": 3, "failed": 0}


def test_changed_file_keeps_id_and_user_data(ix: MediaIndexer, lib: Path) -> None:
    ix.scan(lib, probe=False)
    ids = ids_by_name(ix)
    ix.rate(ids["a.mov"], 4)
    ix.tag(ids["a.mov"], ["hero", "harbour"])
    write(lib / "day1" / "a.mov", os.urandom(5001))
    s = ix.scan(lib, probe=False)
    assert (s.changed, s.added, s.unchanged) == (1, 0, 2)
    a = ix.get(ids["a.mov"])
    assert (a.size, a.rating, a.tags) == (5001, 4, ["harbour", "hero"])


def test_rename_and_move_keep_id_rating_tags_note(ix: MediaIndexer, lib: Path) -> None:
    ix.scan(lib, probe=False)
    ids = ids_by_name(ix)
    ix.rate(ids["a.mov"], 5)
    ix.tag(ids["a.mov"], ["selects"])
    ix.note(ids["a.mov"], "best take")
    ix.rate(ids["c.jpg"], 2)
    (lib / "day1" / "a.mov").rename(lib / "day1" / "A001 renamed.mov")        # rename in place
    (lib / "day3").mkdir()
    (lib / "day2" / "c.jpg").rename(lib / "day3" / "c.jpg")                    # move to another folder
    s = ix.scan(lib, probe=False)
    assert (s.moved, s.added, s.missing) == (2, 0, 0), s.plan
    a = ix.get(ids["a.mov"])
    assert (a.name, a.rating, a.tags, a.note) == ("A001 renamed.mov", 5, ["selects"], "best take")
    c = ix.get(ids["c.jpg"])
    assert (c.relpath, c.rating) == ("day3/c.jpg", 2)
    assert ix.search("selects")[0].id == ids["a.mov"]  # search index follows the move
    assert ix.search("renamed")[0].id == ids["a.mov"]


def test_renamed_folder_is_a_move_of_each_file(ix: MediaIndexer, lib: Path) -> None:
    ix.scan(lib, probe=False)
    ids = ids_by_name(ix)
    ix.tag(ids["b.mp4"], ["keep"])
    (lib / "day1").rename(lib / "Day One")
    s = ix.scan(lib, probe=False)
    assert (s.moved, s.added, s.missing) == (2, 0, 0)
    assert ix.get(ids["b.mp4"]).relpath == "Day One/b.mp4"
    assert ix.get(ids["b.mp4"]).tags == ["keep"]


def test_move_across_devices_found_by_fingerprint(ix: MediaIndexer, lib: Path) -> None:
    """A copy-then-delete gets a new inode and mtime: the content fingerprint recognises it."""
    ix.scan(lib, probe=True)  # probing reads content, so fingerprints are stored
    ids = ids_by_name(ix)
    ix.rate(ids["b.mp4"], 3)
    data = (lib / "day1" / "b.mp4").read_bytes()
    (lib / "day1" / "b.mp4").unlink()
    write(lib / "elsewhere" / "b_copy.mp4", data)
    s = ix.scan(lib, probe=True)
    assert (s.moved, s.added, s.missing) == (1, 0, 0), s.plan
    assert ix.get(ids["b.mp4"]).relpath == "elsewhere/b_copy.mp4"
    assert ix.get(ids["b.mp4"]).rating == 3


def test_copy_is_a_new_asset_not_a_move(ix: MediaIndexer, lib: Path) -> None:
    ix.scan(lib, probe=True)
    shutil.copy2(lib / "day1" / "a.mov", lib / "day2" / "a_copy.mov")
    s = ix.scan(lib, probe=True)
    assert (s.added, s.moved, s.unchanged) == (1, 0, 3)


def test_vanished_files_are_missing_until_prune(ix: MediaIndexer, lib: Path, tmp_path: Path) -> None:
    ix.scan(lib, probe=False)
    ids = ids_by_name(ix)
    ix.tag(ids["c.jpg"], ["client"])
    (lib / "day2" / "c.jpg").unlink()
    s = ix.scan(lib, probe=False)
    assert s.missing == 1
    c = ix.get(ids["c.jpg"])
    assert c.status == "missing" and c.tags == ["client"]
    assert ids["c.jpg"] not in [a.id for a in ix.search(limit=100)]          # hidden from searches
    assert [a.id for a in ix.search(status="missing")] == [ids["c.jpg"]]
    assert ix.scan(lib, probe=False).missing == 0                            # not counted again
    ix.close()
    before = (tmp_path / "cat" / "catalog.sqlite").read_bytes()
    plan = ix.prune(dry_run=True)
    assert [(p.action, p.id) for p in plan] == [("delete", ids["c.jpg"])]
    assert "tags" in plan[0].reason                                         # warns: user data goes too
    ix.close()
    assert (tmp_path / "cat" / "catalog.sqlite").read_bytes() == before
    plan = ix.prune()
    assert [p.id for p in plan if p.action == "delete"] == [ids["c.jpg"]]
    with pytest.raises(Exception, match="no asset"):
        ix.get(ids["c.jpg"])


def test_missing_file_that_comes_back_is_restored(ix: MediaIndexer, lib: Path, tmp_path: Path) -> None:
    ix.scan(lib, probe=False)
    ids = ids_by_name(ix)
    ix.rate(ids["a.mov"], 1)
    keep = tmp_path / "keep.mov"
    shutil.move(lib / "day1" / "a.mov", keep)
    assert ix.scan(lib, probe=False).missing == 1
    shutil.move(keep, lib / "day1" / "a.mov")
    s = ix.scan(lib, probe=False)
    assert (s.changed, s.added) == (1, 0)
    a = ix.get(ids["a.mov"])
    assert a.status != "missing" and a.rating == 1


def test_moved_back_from_missing_in_a_later_scan(ix: MediaIndexer, lib: Path, tmp_path: Path) -> None:
    """Moved out of the tree and back in under another name after a scan saw it missing."""
    ix.scan(lib, probe=False)
    ids = ids_by_name(ix)
    shutil.move(lib / "day1" / "b.mp4", tmp_path / "b.mp4")
    assert ix.scan(lib, probe=False).missing == 1
    shutil.move(tmp_path / "b.mp4", lib / "day2" / "b-returned.mp4")
    s = ix.scan(lib, probe=False)
    assert (s.moved, s.added) == (1, 0)
    assert ix.get(ids["b.mp4"]).status == "unprobed"


def test_dry_run_changes_no_byte_and_plans_exactly(ix: MediaIndexer, lib: Path, tmp_path: Path) -> None:
    cat = tmp_path / "cat" / "catalog.sqlite"
    s = ix.scan(lib, dry_run=True, thumbs=True)
    assert not cat.exists(), "a dry run must not create the catalog"
    assert {(p.action, Path(p.path).name) for p in s.plan if p.action != "write"} == {
        ("add", "a.mov"), ("add", "b.mp4"), ("add", "c.jpg")}
    assert len([p for p in s.plan if p.action == "write"]) == 3  # one thumbnail each, named by content
    assert not (tmp_path / "cache").exists()

    ix.scan(lib, probe=False)
    ix.close()
    (lib / "day1" / "a.mov").rename(lib / "day1" / "a2.mov")
    write(lib / "day1" / "b.mp4", os.urandom(10))
    (lib / "day2" / "c.jpg").unlink()
    write(lib / "new" / "e.wav", os.urandom(300))
    before_db, before_cache = cat.read_bytes(), tree_digest(tmp_path / "cache")
    s = ix.scan(lib, dry_run=True, thumbs=True)
    ix.close()
    got = sorted((p.action, Path(p.path).name, Path(p.source).name if p.source else None)
                 for p in s.plan if p.action != "write")
    assert got == [("add", "e.wav", None), ("change", "b.mp4", None), ("missing", "c.jpg", None),
                   ("move", "a2.mov", "a.mov")]
    assert cat.read_bytes() == before_db
    assert tree_digest(tmp_path / "cache") == before_cache
    real = ix.scan(lib, probe=False)
    assert real.counts == {k: v for k, v in s.counts.items()}


def test_zero_byte_and_odd_names(ix: MediaIndexer, tmp_path: Path) -> None:
    root = tmp_path / "odd"
    write(root / "empty.mp4", b"")
    names = ["with space.mov", "new\nline.mov", "emoji 🎬.mp4", "ünïcödé.mov"]
    for n in names:
        write(root / n, os.urandom(200))
    bad = os.fsencode(root) + b"/latin1-\xe9t\xe9.mov"  # not valid UTF-8
    with open(bad, "wb") as fh:
        fh.write(os.urandom(300))
    s = ix.scan(root, probe=False)
    assert (s.added, s.failed) == (5, 1)
    assert any(i.reason == "empty file (0 bytes)" for i in s.issues)
    found = {a.name: a for a in ix.search(limit=100, status=None)}
    assert set(names) <= set(found)
    assert "latin1-\\xe9t\\xe9.mov" in found                                # shown escaped, stored exact
    assert ix.native_path(found["latin1-\\xe9t\\xe9.mov"].id) == bad          # and opened with the exact bytes
    os.rename(bad, os.fsencode(root) + b"/renamed-\xff.mov")
    s = ix.scan(root, probe=False)
    assert (s.moved, s.added, s.missing) == (1, 0, 0)
    assert ix.get(str(root / "emoji 🎬.mp4")).name == "emoji 🎬.mp4"           # by path


def test_symlinks_not_followed_and_loops_survived(ix: MediaIndexer, tmp_path: Path) -> None:
    root = tmp_path / "links"
    write(root / "real" / "clip.mov", os.urandom(100))
    os.symlink(root, root / "real" / "loop")                  # a loop back to the root
    os.symlink(root / "real" / "clip.mov", root / "alias.mov")
    s = ix.scan(root, probe=False)
    assert s.added == 1 and s.complete
    assert {i.reason for i in s.issues} == {"symlink not followed (use --follow-symlinks)"}
    s = MediaIndexer(tmp_path / "c2.sqlite", cache_dir=tmp_path / "c2").scan(root, probe=False, follow_symlinks=True)
    assert s.complete and s.added == 2                         # alias.mov followed, the loop stopped
    assert any("loop" in i.reason for i in s.issues)


def test_unmounted_share_is_not_marked_missing(ix: MediaIndexer, lib: Path) -> None:
    ix.scan(lib, probe=False)
    moved_away = lib.with_name("lib-away")
    lib.rename(moved_away)
    with pytest.raises(RootUnavailableError, match="no such folder"):
        ix.scan(lib, probe=False)
    lib.mkdir()                                               # the empty mount point of an unmounted share
    with pytest.raises(RootUnavailableError, match="is the share mounted"):
        ix.scan(lib, probe=False)
    assert all(a.status != "missing" for a in ix.search(limit=100))
    s = ix.scan(lib, probe=False, allow_empty=True)
    assert s.missing == 3


def test_second_scan_waits_its_turn(ix: MediaIndexer, lib: Path) -> None:
    from bridge.scan.lock import ScanLock

    with ScanLock(ix.catalog_path), pytest.raises(Exception, match="another scan is running"):
        ix.scan(lib, probe=False)


def test_catalog_is_wal_with_foreign_keys_and_versioned(ix: MediaIndexer, lib: Path) -> None:
    ix.scan(lib, probe=False)
    conn = sqlite3.connect(ix.catalog_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
