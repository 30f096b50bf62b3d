"""The scan and the catalog: odd arguments get one-line errors, a root is never
indexed twice under another name, and user data follows the file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import MediaIndexer, synth
from bridge.errors import RootUnavailableError

CLI = [sys.executable, "-m", "bridge.cli.app"]


def run(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], capture_output=True, timeout=120)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    (root / "sub").mkdir(parents=True)
    synth.make_video(root / "sub" / "a.mov", frames=4, width=32, height=32)
    synth.make_image(root / "c.jpg", width=32, height=32)
    return root


def test_arguments_that_are_not_utf8_or_not_ascii_digits_are_one_line_errors(lib: Path, tmp_path: Path) -> None:
    """A shell argument with invalid UTF-8 ($'\\xff'), a digit like '²' or an id or offset too large for SQLite
    used to end in a traceback; a misspelt status or kind silently found nothing."""
    cat = tmp_path / "cat.sqlite"
    assert run("--catalog", str(cat), "scan", str(lib), "--no-probe").returncode == 0
    before = digest(cat)
    bad = b"x\xff"
    bad_root = tmp_path / os.fsdecode(b"root\xff")
    bad_root.mkdir()
    synth.make_image(bad_root / "d.jpg", width=16, height=16)
    for args in (["tag", "1", bad], ["tag", "1", "--dry-run", bad], ["note", "1", bad], ["search", "--tag", bad],
                 ["search", "--root", b"/" + bad], ["search", "--camera", bad], ["roots", "forget", b"/" + bad],
                 ["rate", "1", "²"], ["show", "²"], ["scan", os.fsencode(bad_root), "--no-probe"],
                 ["show", "99999999999999999999999"], ["tag", "9223372036854775808", "x"],
                 ["search", "--resolution", "99999999999999999999999x1"], ["search", "--status", "mising"],
                 ["recent", "--kind", "photo"]):
        r = run("--catalog", str(cat), *args)
        err = r.stderr.decode("utf-8", "replace")
        assert r.returncode in (1, 2), (args, err)
        assert "Traceback" not in err and err.startswith("mediaidx: error:") and err.count("\n") == 1, (args, err)
    far = run("--catalog", str(cat), "search", "--offset", "99999999999999999999999", "--json")
    assert far.returncode == 0 and b'"results": []' in far.stdout, far.stderr  # past the end: nothing
    assert digest(cat) == before  # nothing written by any of them
    with MediaIndexer(cat) as ix:
        assert [r["url"] for r in ix.roots()] == [str(lib)]
        assert ix.get(1).tags == [] and ix.get(1).note is None


def test_a_root_through_a_symlink_or_inside_a_root_is_not_indexed_twice(lib: Path, tmp_path: Path) -> None:
    """Scanning a link to a root, or a folder inside one, used to register a second root holding a second copy
    of every file (ratings and tags then split between them)."""
    link = tmp_path / "link"
    link.symlink_to(lib)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(lib, probe=False)
        ix.rate(ix.get(str(lib / "sub" / "a.mov")).id, 4)
        for other in (link, lib / "sub", link / "sub"):
            for dry in (True, False):
                with pytest.raises(RootUnavailableError, match=f"scan {lib}"):
                    ix.scan(other, probe=False, dry_run=dry)
        both = ix.scan(lib, link, probe=False)  # with other roots: reported, the rest is scanned
        assert not both.complete and both.unchanged == 2 and "same folder" in both.issues[0].reason
        assert [r["url"] for r in ix.roots()] == [str(lib)]
        assert ix.stats().assets == 2
        assert ix.scan(f"{lib}/", probe=False).unchanged == 2  # the same root spelt with a trailing slash
        assert ix.scan(os.path.relpath(lib), probe=False).unchanged == 2  # or relative to the working directory
        assert [r["url"] for r in ix.roots()] == [str(lib)]


@pytest.fixture
def takes(tmp_path: Path) -> Path:
    root = tmp_path / "takes"
    (root / "sh010").mkdir(parents=True)
    (root / "sh020").mkdir()
    synth.make_video(root / "sh010" / "take1.mov", frames=6, width=64, height=48)
    synth.make_video(root / "sh010" / "take2.mov", frames=12, width=64, height=48)
    return root


@pytest.mark.parametrize("probe", [False, True])
def test_user_data_follows_files_that_take_over_each_others_names(takes: Path, tmp_path: Path, probe: bool) -> None:
    """Two takes swapped by name, or one renamed over another (`mv take2.mov take1.mov`), used to leave each
    rating and note on the name, so on the other clip; each row must follow its content."""
    sh = takes / "sh010"
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(takes, probe=probe)
        one, two = ix.get(str(sh / "take1.mov")).id, ix.get(str(sh / "take2.mov")).id
        ix.rate(one, 2)
        ix.note(two, "the good one")
        ix.tag(two, ["select"])

        os.rename(sh / "take1.mov", sh / "tmp")  # swap the names
        os.rename(sh / "take2.mov", sh / "take1.mov")
        os.rename(sh / "tmp", sh / "take2.mov")
        dry = ix.scan(takes, probe=probe, dry_run=True)
        assert sorted((p.action, p.id) for p in dry.plan) == sorted([("move", one), ("move", two)])
        s = ix.scan(takes, probe=probe)
        assert (s.moved, s.changed, s.added, s.missing) == (2, 0, 0, 0)
        assert (ix.get(one).name, ix.get(one).rating) == ("take2.mov", 2)
        assert (ix.get(two).name, ix.get(two).note, ix.get(two).tags) == ("take1.mov", "the good one", ["select"])
        assert ix.search("good")[0].name == "take1.mov"
        assert ix.scan(takes, probe=probe).unchanged == 2  # settled

        os.rename(sh / "take1.mov", takes / "sh020" / "take9.mov")  # a chain: take1 away, take2 into its name
        os.rename(sh / "take2.mov", sh / "take1.mov")
        s = ix.scan(takes, probe=probe)
        assert (s.moved, s.changed, s.added, s.missing) == (2, 0, 0, 0)
        assert ix.get(two).relpath == "sh020/take9.mov" and ix.get(one).relpath == "sh010/take1.mov"

        os.rename(takes / "sh020" / "take9.mov", sh / "take1.mov")  # renamed over: take1's content is gone
        s = ix.scan(takes, probe=probe)
        assert (s.moved, s.changed, s.added, s.missing) == (1, 0, 0, 1)
        assert (ix.get(two).relpath, ix.get(two).note) == ("sh010/take1.mov", "the good one")
        assert ix.get(two).status != "missing"
        gone = ix.get(one)
        assert gone.status == "missing" and gone.rating == 2  # kept until prune, which says what it loses
        assert [p.id for p in ix.prune(dry_run=True) if p.action == "delete"] == [one]
        assert ix.scan(takes, probe=probe).unchanged == 1


def test_a_new_version_written_over_a_name_keeps_the_row(takes: Path, tmp_path: Path) -> None:
    """A re-render saved over the old file (new inode: written beside it, then renamed) is a change of the same
    asset, even when its content equals another catalogued file's."""
    sh = takes / "sh010"
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(takes)
        one = ix.get(str(sh / "take1.mov")).id
        ix.rate(one, 5)
        synth.make_video(sh / "render.tmp.mov", frames=20, width=32, height=32)
        os.rename(sh / "render.tmp.mov", sh / "take1.mov")
        assert ix.scan(takes).counts["changed"] == 1 and ix.get(one).rating == 5
        (sh / "copy.tmp").write_bytes((sh / "take2.mov").read_bytes())
        os.rename(sh / "copy.tmp", sh / "take1.mov")
        s = ix.scan(takes)
        assert (s.changed, s.moved, s.added, s.missing) == (1, 0, 0, 0)
        assert ix.get(one).rating == 5 and ix.get(one).size == (sh / "take2.mov").stat().st_size


def test_a_scan_without_follow_symlinks_leaves_linked_files_alone(tmp_path: Path) -> None:
    """Indexed with --follow-symlinks, then rescanned without it (`mediaidx scan` of every root does not
    remember the option): the linked files used to be marked missing, one `prune` away from losing their
    ratings. They are not read, so they are reported and left alone; a link whose target is gone is missing."""
    lib, ext = tmp_path / "lib", tmp_path / "ext"
    lib.mkdir()
    (ext / "deep").mkdir(parents=True)
    synth.make_video(ext / "x.mov", frames=4, width=32, height=32)
    synth.make_video(ext / "deep" / "y.mov", frames=5, width=32, height=32)
    synth.make_video(ext / "z.mov", frames=6, width=32, height=32)
    synth.make_video(lib / "own.mov", frames=7, width=32, height=32)
    (lib / "linked").symlink_to(ext)
    (lib / "zl.mov").symlink_to(ext / "z.mov")
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        assert ix.scan(lib, follow_symlinks=True).added == 5
        x = ix.get(str(lib / "linked" / "x.mov")).id
        ix.rate(x, 5)
        for dry in (True, False):
            s = ix.scan(lib, dry_run=dry)
            assert (s.missing, s.unchanged, s.skipped) == (0, 1, 2), s.plan
            assert not [p for p in s.plan if p.action == "missing"]
        assert ix.count(status="missing") == 0 and ix.get(x).rating == 5
        assert ix.scan().missing == 0  # every root, as a cron job runs it
        assert ix.prune(dry_run=True) == []
        assert ix.scan(lib, follow_symlinks=True).unchanged == 5
        (ext / "z.mov").unlink()  # the link is broken now: that file is gone
        s = ix.scan(lib, follow_symlinks=True)
        assert (s.missing, s.unchanged) == (2, 3)
        assert sorted(a.relpath for a in ix.search(status="missing")) == ["linked/z.mov", "zl.mov"]


def test_a_root_whose_files_are_all_behind_links_is_not_taken_for_an_empty_mount(tmp_path: Path) -> None:
    """Every catalogued file under links that a plain rescan does not follow: nothing is listed as a file, but
    the links are there, so this is no unmounted share (the scan used to stop: 'the folder is empty')."""
    lib, ext = tmp_path / "lib", tmp_path / "ext"
    lib.mkdir()
    ext.mkdir()
    synth.make_video(ext / "x.mov", frames=4, width=32, height=32)
    (lib / "linked").symlink_to(ext)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        assert ix.scan(lib, follow_symlinks=True).added == 1
        s = ix.scan(lib)
        assert (s.missing, s.skipped, s.complete) == (0, 1, True)


def test_an_unmounted_share_among_several_roots_does_not_stop_the_others(tmp_path: Path) -> None:
    """`mediaidx scan` of every root: one share unmounted (an empty mount point) used to stop the whole scan
    with an error, so the roots after it were never scanned. It is reported and the others are scanned."""
    share, local = tmp_path / "a-share", tmp_path / "b-local"
    share.mkdir()
    local.mkdir()
    synth.make_video(share / "s.mov", frames=4, width=32, height=32)
    synth.make_video(local / "l.mov", frames=5, width=32, height=32)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(share, local, probe=False)
        (share / "s.mov").rename(tmp_path / "s.mov")  # the share's mount point is empty now
        synth.make_image(local / "new.jpg", width=16, height=16)
        for dry in (True, False):
            s = ix.scan(probe=False, dry_run=dry)
            assert not s.complete and (s.added, s.missing, s.unchanged) == (1, 0, 1)
            assert [i.path for i in s.issues] == [str(share)] and "is the share mounted?" in s.issues[0].reason
        assert ix.count(status="missing") == 0 and ix.stats().present == 3
        with pytest.raises(RootUnavailableError, match="is the share mounted"):
            ix.scan(share, probe=False)  # alone it stops with the error, as before


def test_a_move_between_roots_keeps_user_data_whichever_root_is_scanned_first(tmp_path: Path) -> None:
    """`mediaidx scan` goes through the roots in name order: a clip moved from a root that sorts after the one
    it moved to used to be added as a new asset, its old row (rating, tags, note) left missing for prune."""
    new, old = tmp_path / "a-new", tmp_path / "z-old"
    new.mkdir()
    old.mkdir()
    synth.make_video(old / "x.mov", frames=4, width=32, height=32)
    synth.make_video(old / "stays.mov", frames=5, width=32, height=32)
    synth.make_image(new / "n.jpg", width=16, height=16)
    for probe in (False, True):
        with MediaIndexer(tmp_path / f"cat{probe}.sqlite", cache_dir=tmp_path / "cache") as ix:
            ix.scan(new, old, probe=probe)
            x = ix.get(str(old / "x.mov")).id
            ix.rate(x, 4)
            ix.tag(x, ["hero"])
            (old / "x.mov").rename(new / "x.mov")
            dry = ix.scan(probe=probe, dry_run=True)
            assert [(p.action, p.id) for p in dry.plan] == [("move", x)]
            s = ix.scan(probe=probe)
            assert (s.moved, s.added, s.missing, s.unchanged) == (1, 0, 0, 2)
            a = ix.get(str(new / "x.mov"))
            assert (a.id, a.rating, a.tags) == (x, 4, ["hero"])
            assert ix.scan(probe=probe).unchanged == 3
            (new / "x.mov").rename(old / "x.mov")  # and back, for the next round
            assert ix.scan(probe=probe).moved == 1 and ix.get(str(old / "x.mov")).id == x


def test_files_copied_off_a_share_that_is_now_unmounted_are_not_moves(tmp_path: Path) -> None:
    """A gone file only counts as moved when its root is there: copies made before a share was unmounted are
    new assets, and the share's rows keep their user data for when it is mounted again."""
    new, share = tmp_path / "a-local", tmp_path / "z-share"
    new.mkdir()
    share.mkdir()
    synth.make_video(share / "x.mov", frames=4, width=32, height=32)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(new, share)
        x = ix.get(str(share / "x.mov")).id
        ix.rate(x, 4)
        (new / "x.mov").write_bytes((share / "x.mov").read_bytes())
        (share / "x.mov").rename(tmp_path / "x.mov")  # unmounted: an empty mount point
        s = ix.scan()
        assert (s.added, s.moved, s.missing) == (1, 0, 0) and not s.complete
        assert ix.get(x).status != "missing" and ix.get(x).rating == 4


def test_a_search_with_many_excluded_words_is_not_an_fts_error(lib: Path, tmp_path: Path) -> None:
    """Each -word used to nest one more NOT: a few hundred of them (a pasted list, a script building a query)
    overflowed the FTS5 parser and ended in a traceback."""
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(lib, probe=False)
        excluded = " ".join(f"-w{i}" for i in range(1000))
        assert [a.name for a in ix.search(f"c {excluded}")] == ["c.jpg"] and ix.count(f"c {excluded}") == 1
        assert ix.search(f"c {excluded} -jpg") == []
        assert ix.search(" ".join(f"w{i}" for i in range(5000))) == []


def test_a_parent_folder_scanned_as_a_root_adopts_the_roots_inside_it(tmp_path: Path) -> None:
    """`scan /nas/jobs` first, `scan /nas` later: the jobs files were catalogued a second time under /nas, with
    ratings and tags left on the first copy. Now the old root becomes a folder of the new one: same ids and user
    data, nothing new but what is really new, one root left; the dry run plans exactly that and writes nothing."""
    nas = tmp_path / "nas"
    (nas / "jobs" / "sh010").mkdir(parents=True)
    (nas / "other").mkdir()
    synth.make_image(nas / "jobs" / "sh010" / "plate.jpg", width=32, height=24)
    synth.make_image(nas / "jobs" / "ref.jpg", width=32, height=24)
    synth.make_image(nas / "other" / "new.jpg", width=32, height=24)
    cat = tmp_path / "cat.sqlite"
    with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix:
        ix.scan(nas / "jobs")
        plate = next(a for a in ix.search(limit=10) if a.name == "plate.jpg")
        ix.rate(plate.id, 5)
        ix.tag(plate.id, ["hero"])
        ix.close()
        before = digest(cat)
        dry = ix.scan(nas, dry_run=True)
        assert digest(cat) == before
        assert [(p.action, p.path) for p in dry.plan if p.action in ("adopt", "add")] == [
            ("adopt", f"{nas}/jobs"), ("add", f"{nas}/other/new.jpg")]
        assert (dry.added, dry.unchanged) == (1, 2)
        s = ix.scan(nas)
        assert (s.added, s.unchanged, s.missing, s.failed) == (1, 2, 0, 0)
        assert [r["url"] for r in ix.roots()] == [str(nas)]
        again = ix.get(plate.id)
        assert (again.rating, again.tags) == (5, ["hero"])
        assert again.path == str(nas / "jobs" / "sh010" / "plate.jpg")
        assert ix.stats().assets == 3
        assert [a.id for a in ix.search("nas sh010")] == [plate.id]  # the search rows know the new path
        assert ix.scan(nas).counts["unchanged"] == 3
        with ix._read_db().conn as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_parent_holding_two_nested_roots_is_refused(tmp_path: Path) -> None:
    """Roots one inside the other (catalogued twice already, before the refusal above): merging their duplicate
    rows is not guessed; the parent scan says which root to forget."""
    nas = tmp_path / "nas"
    (nas / "a" / "b").mkdir(parents=True)
    synth.make_image(nas / "a" / "b" / "x.jpg", width=32, height=24)
    cat = tmp_path / "cat.sqlite"
    with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix:
        ix.scan(nas / "a" / "b")
        ix.scan(nas / "a")  # adopts a/b
        assert [r["url"] for r in ix.roots()] == [str(nas / "a")]
        with ix._write_db().transaction() as conn:  # as a catalog from before the refusal could hold
            conn.execute("INSERT INTO roots (url, added_at) VALUES (?, 0)", (str(nas / "a" / "b"),))
        with pytest.raises(RootUnavailableError, match="one inside the other"):
            ix.scan(nas)
        assert sorted(r["url"] for r in ix.roots()) == [str(nas / "a"), str(nas / "a" / "b")]
        with ix._write_db().transaction() as conn:  # the same folder twice: a link to a root, from before too
            conn.execute("DELETE FROM roots WHERE url = ?", (str(nas / "a" / "b"),))
            conn.execute("INSERT INTO roots (url, added_at) VALUES (?, 0)", (str(tmp_path / "link-to-a"),))
        os.symlink(nas / "a", tmp_path / "link-to-a")
        before = sorted(r["url"] for r in ix.roots())
        with pytest.raises(RootUnavailableError, match="the same folder twice"):
            ix.scan(nas)
        assert sorted(r["url"] for r in ix.roots()) == before  # nothing half adopted
