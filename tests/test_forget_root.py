"""Forgetting a root (`mediaidx roots forget`): its assets, analyses and the thumbnails only they used leave
the catalog, the files stay, other roots are untouched, and user data is never lost by accident."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from bridge import MediaIndexer, synth
from bridge.errors import NotFoundError, UsageError


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def two_roots(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """Root A: a clip, two stills (one also copied to B, so both roots share its thumbnail); root B: that copy
    and a still of its own."""
    a, b = tmp_path / "nas-a", tmp_path / "nas-b"
    (a / "day1").mkdir(parents=True)
    b.mkdir()
    synth.make_video(a / "day1" / "A001.mov", fps=Fraction(25), frames=25, width=160, height=90)
    synth.make_image(a / "day1" / "still.jpg", width=64, height=48)
    synth.make_image(a / "shared.jpg", width=72, height=48)
    shutil.copy2(a / "shared.jpg", b / "shared_copy.jpg")
    synth.make_image(b / "own.jpg", width=80, height=48)
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(a, b, thumbs=True)
        ix.analyze(str(a / "day1" / "A001.mov"))
    return a, b, cat, cache


def _counts(cat: Path) -> dict[str, int]:
    conn = sqlite3.connect(cat)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("roots", "folders", "assets", "asset_fts", "analyses", "scans", "tags", "asset_tags")}
    finally:
        conn.close()


def test_forgetting_a_root_removes_its_rows_and_only_its_thumbnails(two_roots) -> None:
    a, b, cat, cache = two_roots
    files_before = _tree_digest(a) | _tree_digest(b)
    with MediaIndexer(cat, cache_dir=cache) as ix:
        b_assets = {x.name: x for x in ix.search(root=str(b))}
        a_assets = ix.search(root=str(a))
        assert len(a_assets) == 3 and set(b_assets) == {"shared_copy.jpg", "own.jpg"}
        a_thumbs = {x.thumb for x in a_assets if x.thumb}
        shared_thumb = b_assets["shared_copy.jpg"].thumb
        assert shared_thumb in a_thumbs  # same content, one thumbnail
        before = _counts(cat)

        plan = ix.forget_root(str(a) + "/")  # as the user types it
        assert plan[0].action == "forget-root" and plan[0].path == str(a)
        assert sorted(p.id for p in plan if p.action == "delete") == sorted(x.id for x in a_assets)
        removed = {p.path for p in plan if p.action == "remove"}

        assert [r["url"] for r in ix.roots()] == [str(b)]
        assert ix.search(root=str(a)) == []
        assert ix.search("A001") == [] and ix.search("still") == []  # full-text rows went too
        assert {x.name for x in ix.search()} == {"shared_copy.jpg", "own.jpg"}
        assert ix.get(b_assets["own.jpg"].id).thumb == b_assets["own.jpg"].thumb
    after = _counts(cat)
    assert after["assets"] == before["assets"] - 3 and after["asset_fts"] == after["assets"]
    assert after["analyses"] == 0 and after["roots"] == 1
    assert after["folders"] == before["folders"] - 2 and after["scans"] < before["scans"]
    assert Path(shared_thumb).is_file()                          # B still uses it
    assert removed and all(not Path(p).exists() for p in removed)
    assert shared_thumb not in removed
    assert _tree_digest(a) | _tree_digest(b) == files_before    # the media files are never touched
    conn = sqlite3.connect(cat)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_user_data_is_never_dropped_by_accident(two_roots) -> None:
    a, _b, cat, cache = two_roots
    with MediaIndexer(cat, cache_dir=cache) as ix:
        still = next(x for x in ix.search(root=str(a)) if x.name == "still.jpg")
        ix.rate(still.id, 5)
        ix.tag(still.id, ["client-pick"])
    before = (cat.read_bytes(), _tree_digest(cache))
    with MediaIndexer(cat, cache_dir=cache) as ix:
        with pytest.raises(UsageError, match=r"1 asset.*carry ratings, tags or notes"):
            ix.forget_root(str(a))
        assert (cat.read_bytes(), _tree_digest(cache)) == before  # refused: nothing changed
        dry = ix.forget_root(str(a), dry_run=True)                 # the dry run lists what would be lost
        assert any(p.id == still.id and "loses user data: rating, 1 tags" in (p.reason or "") for p in dry)
        assert (cat.read_bytes(), _tree_digest(cache)) == before
        ix.forget_root(str(a), drop_user_data=True)
        assert ix.search(tags=["client-pick"]) == []
    assert _counts(cat)["tags"] == 0  # the tag nobody uses any more went too


def test_a_library_that_moved_keeps_its_user_data_and_the_old_root_can_go(two_roots, tmp_path: Path) -> None:
    """The way to retire a share: scan the old and the new location (the move is recognised across roots and
    keeps ratings and tags), then forget the old root, which then holds nothing worth keeping."""
    a, b, cat, cache = two_roots
    with MediaIndexer(cat, cache_dir=cache) as ix:
        clip = next(x for x in ix.search(root=str(a)) if x.name == "A001.mov")
        ix.rate(clip.id, 4)
        new = tmp_path / "nas-new"
        shutil.move(str(a / "day1"), str(new))
        summary = ix.scan(a, new)
        assert summary.moved == 2  # day1: the clip and a still
        moved = ix.get(clip.id)
        assert moved.root == str(new) and moved.rating == 4
        plan = ix.forget_root(str(a))  # no user data left there: no flag needed
        assert clip.id not in {p.id for p in plan}
        assert ix.get(clip.id).rating == 4
        assert sorted(r["url"] for r in ix.roots()) == sorted([str(b), str(new)])


def test_an_unknown_root_is_a_clear_error(two_roots) -> None:
    a, _b, cat, cache = two_roots
    with MediaIndexer(cat, cache_dir=cache) as ix, pytest.raises(NotFoundError, match="not a root of this catalog"):
        ix.forget_root(str(a / "day1"))


def test_the_cli_lists_and_forgets_roots(two_roots) -> None:
    a, b, cat, cache = two_roots

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bridge.cli.app", "--catalog", str(cat), "--cache-dir",
                               str(cache), *args], capture_output=True, text=True, timeout=120)

    listed = cli("roots", "--json")
    assert listed.returncode == 0 and [r["url"] for r in json.loads(listed.stdout)["roots"]] == sorted([str(a), str(b)])
    before = cat.read_bytes()
    dry = cli("roots", "forget", str(b), "--dry-run", "--json")
    assert dry.returncode == 0 and cat.read_bytes() == before
    out = json.loads(dry.stdout)
    assert out["root"] == str(b) and out["assets"] == 2 and out["refused_without_drop_user_data"] == 0
    done = cli("roots", "forget", str(b))
    assert done.returncode == 0 and f"forgot {b}: 2 assets" in done.stdout
    assert cli("roots").stdout.split() == [str(a)]
    missing = cli("roots", "forget", "/nowhere")
    assert missing.returncode != 0 and "not a root of this catalog" in missing.stderr and "Traceback" not in missing.stderr
