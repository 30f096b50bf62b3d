"""Backups keep each root's folder when roots come and go, stop on a full backup disk blaming the disk, and
never share a temporary file between two copies of the same file (real files, real SQLite catalog)."""

from __future__ import annotations

import errno
import io
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from bridge import MediaIndexer
from bridge.library import fileops
from bridge.library.fileops import DestinationExists, verified_copy


def make_root(folder: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def backup(ix: MediaIndexer, dest: Path, dry_run: bool = False) -> dict:
    dest.mkdir(parents=True, exist_ok=True)
    (r,) = ix.run_workflow({"action": "backup", "backup_root": str(dest)}, dry_run=dry_run)
    return r


def plan(r: dict, action: str) -> list[tuple[str, str | None]]:
    return sorted((p["path"], p.get("source")) for p in r["result"]["plan"] if p["action"] == action)


def copies_of(bk: Path, name: str) -> list[Path]:
    return sorted(p for p in bk.rglob(name) if p.is_file())


A = {"clips/A.mov": os.urandom(30_000)}
B = {"clips/B.mov": os.urandom(20_000)}


# -- (2) a root keeps its backup folder ----------------------------------------------------------------------

def test_adding_a_root_with_the_same_last_name_does_not_move_the_first_roots_backup(tmp_path: Path) -> None:
    a = make_root(tmp_path / "mnt" / "My Footage", A)
    b = make_root(tmp_path / "nas" / "My Footage", B)
    bk = tmp_path / "bk"
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(a, probe=False)
        assert backup(ix, bk)["result"]["copied"] == 1
        assert (bk / "My Footage" / "clips" / "A.mov").read_bytes() == A["clips/A.mov"]

        ix.scan(b, probe=False)  # a second root called "My Footage"
        dry = backup(ix, bk, dry_run=True)
        real = backup(ix, bk)
    assert real["status"] == "ok", real["error"]
    # The first root's copies are where they were: nothing is copied again (on a nearly full disk, twice the
    # root would not fit); only the new root's file is copied, into a folder of its own.
    assert real["result"]["copied"] == 1 and real["result"]["skipped"] == 1
    assert copies_of(bk, "A.mov") == [bk / "My Footage" / "clips" / "A.mov"]
    (b_copy,) = copies_of(bk, "B.mov")
    assert b_copy.parent.parent.name.startswith("My Footage-") and b_copy.read_bytes() == B["clips/B.mov"]
    assert plan(dry, "copy") == plan(real, "copy") == [(str(b_copy), str(b / "clips" / "B.mov"))]
    assert plan(dry, "skip") == plan(real, "skip")


def test_removing_a_root_does_not_move_the_other_roots_backup(tmp_path: Path) -> None:
    a = make_root(tmp_path / "mnt" / "footage", A)
    b = make_root(tmp_path / "nas" / "footage", B)
    bk = tmp_path / "bk"
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(a, b, probe=False)
        assert backup(ix, bk)["result"]["copied"] == 2
        (first,) = copies_of(bk, "A.mov")
        ix.forget_root(b)
        r = backup(ix, bk)
    assert r["status"] == "ok" and r["result"]["copied"] == 0 and r["result"]["skipped"] == 1
    assert copies_of(bk, "A.mov") == [first]


def test_a_new_catalog_finds_the_folders_of_roots_that_share_a_name(tmp_path: Path) -> None:
    """No record of earlier copies (a catalog made anew): roots that share a last name get a suffix made
    from their URL, the same in every catalog, so their folders are found again without looking on the disk
    (where a common name such as DCIM says nothing about whose folder it is)."""
    a = make_root(tmp_path / "mnt" / "footage", A)
    b = make_root(tmp_path / "nas" / "footage", B)
    bk = tmp_path / "bk"
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(a, b, probe=False)
        assert backup(ix, bk)["result"]["copied"] == 2
    (a_copy,) = copies_of(bk, "A.mov")
    (b_copy,) = copies_of(bk, "B.mov")
    assert a_copy.parent.parent.name.startswith("footage-") and b_copy.parent.parent.name.startswith("footage-")
    with MediaIndexer(tmp_path / "new.sqlite", cache_dir=tmp_path / "cache2") as ix:
        ix.scan(b, a, probe=False)
        dry = backup(ix, bk, dry_run=True)
        r = backup(ix, bk)
    assert dry["result"]["copied"] == r["result"]["copied"] == 0
    assert r["status"] == "ok" and plan(r, "skip") == sorted([(str(a_copy), str(a / "clips" / "A.mov")),
                                                              (str(b_copy), str(b / "clips" / "B.mov"))])
    assert copies_of(bk, "A.mov") == [a_copy] and copies_of(bk, "B.mov") == [b_copy]


# -- (3) a full backup disk ----------------------------------------------------------------------------------

def failing_writes(monkeypatch: pytest.MonkeyPatch, err: int, fails: Callable[[int], bool]) -> list[int]:
    """Make the copy's n-th write (from 1) fail with ``err`` where ``fails(n)``; returns the writes seen.

    A real full disk needs a small file system (a tmpfs or a loop mount), which only root can mount; the
    failure is injected at the narrowest point instead: the single place fileops writes a copy's bytes, so
    everything around it (creating the temporary file, fsync, read-back, placement) runs for real."""
    calls: list[int] = []
    real = getattr(fileops, "_write_all", None)

    def write(fd: int, data: bytes) -> None:
        calls.append(len(data))
        if fails(len(calls)):
            raise OSError(err, os.strerror(err))
        assert real is not None
        real(fd, data)

    monkeypatch.setattr(fileops, "_write_all", write, raising=False)
    return calls


@pytest.fixture
def three(tmp_path: Path) -> MediaIndexer:
    root = make_root(tmp_path / "nas", {f"clips/{n}.mov": os.urandom(10_000) for n in ("A", "B", "C")})
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(root, probe=False)
        yield ix


@pytest.mark.parametrize("err, says", [(errno.ENOSPC, "the backup disk is full"),
                                       (errno.EDQUOT, "the disk quota is exceeded"),
                                       (errno.EROFS, "the backup disk is read-only")])
def test_a_full_backup_disk_stops_the_backup_and_blames_the_disk(three: MediaIndexer, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 err: int, says: str) -> None:
    bk = tmp_path / "bk"
    with monkeypatch.context() as m:
        calls = failing_writes(m, err, lambda n: n > 1)
        r = backup(three, bk)
    res = r["result"]
    assert r["status"] == "failed" and res["copied"] == 1 and res["failed"] == 1
    assert len(calls) == 2  # the third file is not tried on a disk that is full
    assert res["not_attempted"] == 1
    fails = [p for p in res["plan"] if p["action"] == "fail"]
    file_fail, stop = fails
    assert file_fail["reason"] == f"cannot write {file_fail['path']}: {os.strerror(err)}"
    assert file_fail["path"].startswith(str(bk / "nas" / "clips"))
    assert stop["path"] == str(bk) and stop["reason"].startswith(f"backup stopped: {says}")
    assert "1 file(s) not attempted" in stop["reason"]
    assert not any("cannot read" in (p["reason"] or "") for p in res["plan"])  # the source is not blamed
    assert not list(bk.rglob("*mediaidx-part"))
    again = backup(three, bk)  # room again: the rest is copied
    assert again["status"] == "ok" and again["result"]["copied"] == 2 and again["result"]["skipped"] == 1


def test_one_file_that_cannot_be_written_fails_alone(three: MediaIndexer, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An I/O error on one copy is that file's failure, on the destination's side; the backup goes on."""
    with monkeypatch.context() as m:
        calls = failing_writes(m, errno.EIO, lambda n: n == 2)
        r = backup(three, tmp_path / "bk")
    res = r["result"]
    assert len(calls) == 3 and res["copied"] == 2 and res["failed"] == 1 and res["not_attempted"] == 0
    (f,) = [p for p in res["plan"] if p["action"] == "fail"]
    assert f["reason"] == f"cannot write {f['path']}: {os.strerror(errno.EIO)}"


# -- (4) temporary files of their own -------------------------------------------------------------------------

class _Source:
    """A source that yields ``data`` and then, before saying it is done, waits for ``go``."""

    def __init__(self, data: bytes, wrote: threading.Event, go: threading.Event) -> None:
        self.data, self.wrote, self.go, self.reads = data, wrote, go, 0

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self, n: int = -1) -> bytes:
        self.reads += 1
        if self.reads == 1:
            return self.data
        self.wrote.set()
        self.go.wait(10)
        return b""


def test_two_copies_of_the_same_file_at_once_never_mix(tmp_path: Path) -> None:
    """Two backups copy the same file at once: the one that places its copy places its own verified bytes,
    whatever the other is doing with its temporary file meanwhile."""
    dest = tmp_path / "bk" / "nas" / "A.mov"
    mine, theirs = os.urandom(50_000), os.urandom(40_000)
    wrote, go = threading.Event(), threading.Event()
    other: list[BaseException | str] = []

    def second_copy() -> None:
        try:
            other.append(verified_copy(lambda: _Source(theirs, wrote, go), dest))  # type: ignore[arg-type,return-value]
        except BaseException as exc:
            other.append(exc)

    t = threading.Thread(target=second_copy)

    def unchanged() -> None:  # ours is written and verified; the other copy starts writing now
        t.start()
        assert wrote.wait(10)

    try:
        digest = verified_copy(lambda: io.BytesIO(mine), dest, unchanged=unchanged)
    finally:
        go.set()
        t.join(10)
    assert dest.read_bytes() == mine
    assert digest == fileops.hash_file(dest)
    (result,) = other
    assert isinstance(result, DestinationExists), result  # the other copy leaves ours alone
    assert dest.read_bytes() == mine
    assert not list(dest.parent.glob(".*mediaidx-part"))


def test_a_leftover_temporary_file_never_blocks_a_later_backup(three: MediaIndexer, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """What a killed backup left beside the destination (here something that cannot be reopened for
    writing: a folder; a read-only file does the same to a user who is not root) is neither reused nor in
    the way, even when a new temporary name happens to be the same."""
    clips = tmp_path / "bk" / "nas" / "clips"
    (clips / ".A.mov.mediaidx-part" / "x").mkdir(parents=True)  # the fixed name of earlier versions
    (clips / ".B.mov.000000000000.mediaidx-part").write_bytes(b"left by a killed backup")
    names = iter(["aaaaaaaaaaaa", "000000000000", "111111111111"])  # A's, then B's: taken, so another
    monkeypatch.setattr(fileops, "secrets", SimpleNamespace(token_hex=lambda n: next(names, "222222222222")),
                        raising=False)
    r = backup(three, tmp_path / "bk")
    assert r["status"] == "ok" and r["result"]["copied"] == 3, r["result"]["plan"]
    src = tmp_path / "nas" / "clips"
    for n in ("A", "B", "C"):
        assert (clips / f"{n}.mov").read_bytes() == (src / f"{n}.mov").read_bytes()
    assert (clips / ".B.mov.000000000000.mediaidx-part").read_bytes() == b"left by a killed backup"
    assert next(names, None) is None
    rows = sqlite3.connect(tmp_path / "cat.sqlite").execute("SELECT count(*) FROM backups").fetchone()
    assert rows == (3,)
