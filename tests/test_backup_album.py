"""Verified backups that never overwrite, and album sync renamed by capture date."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from bridge import MediaIndexer, synth
from bridge.errors import UsageError
from bridge.library.album import AlbumFile, files_in_folder, sync_album


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def ix(tmp_path: Path) -> MediaIndexer:
    root = tmp_path / "nas"
    (root / "clips").mkdir(parents=True)
    (root / "stills").mkdir()
    synth.make_video(root / "clips" / "A.mov", frames=5, width=64, height=48)
    synth.make_video(root / "clips" / "B.mp4", frames=5, width=64, height=48, audio=synth.tone())
    synth.make_image(root / "stills" / "s.jpg", width=32, height=32)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as indexer:
        indexer.scan(root)
        yield indexer


def backup(ix: MediaIndexer, dest: Path, **extra: object) -> dict:
    dest.mkdir(parents=True, exist_ok=True)  # a backup folder is made (or mounted) by its owner
    (r,) = ix.run_workflow({"action": "backup", "backup_root": str(dest), **extra})
    return r


def test_backup_copies_verifies_records_and_is_idempotent(ix: MediaIndexer, tmp_path: Path) -> None:
    r = backup(ix, tmp_path / "bk")
    assert r["status"] == "ok" and r["result"]["copied"] == 3
    for rel in ("clips/A.mov", "clips/B.mp4", "stills/s.jpg"):
        assert sha(tmp_path / "bk" / "nas" / rel) == sha(tmp_path / "nas" / rel)
        assert os.stat(tmp_path / "bk" / "nas" / rel).st_mtime_ns == os.stat(tmp_path / "nas" / rel).st_mtime_ns
    conn = sqlite3.connect(tmp_path / "cat.sqlite")
    assert conn.execute("SELECT count(*), count(DISTINCT hash) FROM backups").fetchone() == (3, 3)
    assert not list((tmp_path / "bk").rglob(".*mediaidx-part"))  # no temporary files left
    again = backup(ix, tmp_path / "bk")
    assert again["result"]["copied"] == 0 and again["result"]["skipped"] == 3


def test_backup_never_overwrites_a_different_file(ix: MediaIndexer, tmp_path: Path) -> None:
    squatter = tmp_path / "bk" / "nas" / "clips" / "A.mov"
    squatter.parent.mkdir(parents=True)
    squatter.write_bytes(b"someone else's file")
    r = backup(ix, tmp_path / "bk")
    assert r["status"] == "failed" and "conflict" in r["error"]
    assert r["result"]["conflicts"] == 1 and r["result"]["copied"] == 2  # the others still copied
    assert squatter.read_bytes() == b"someone else's file"
    # A source file edited after its backup: reported, the backup copy is kept as it was.
    (tmp_path / "nas" / "clips" / "B.mp4").write_bytes(b"re-exported")
    old = sha(tmp_path / "bk" / "nas" / "clips" / "B.mp4")
    r = backup(ix, tmp_path / "bk")
    assert r["result"]["conflicts"] == 2
    assert sha(tmp_path / "bk" / "nas" / "clips" / "B.mp4") == old


def test_backup_filters_and_dry_run(ix: MediaIndexer, tmp_path: Path) -> None:
    dry = backup(ix, tmp_path / "bk", kind="video", dry_run=True)
    plan = [p for p in dry["result"]["plan"] if p["action"] == "copy"]
    assert sorted(Path(p["path"]).name for p in plan) == ["A.mov", "B.mp4"]
    assert list((tmp_path / "bk").iterdir()) == []  # nothing written into it
    r = backup(ix, tmp_path / "bk", has_audio=True)
    assert r["result"]["copied"] == 1 and (tmp_path / "bk" / "nas" / "clips" / "B.mp4").exists()


def test_backup_survives_an_unreadable_source(ix: MediaIndexer, tmp_path: Path) -> None:
    (tmp_path / "nas" / "clips" / "A.mov").unlink()  # catalogued, gone before the backup
    r = backup(ix, tmp_path / "bk")
    assert r["status"] == "failed" and r["result"]["failed"] == 1 and r["result"]["copied"] == 2


@pytest.fixture
def phone(tmp_path: Path) -> Path:
    d = tmp_path / "DCIM"
    d.mkdir()
    synth.make_image(d / "IMG_0001.JPG", width=32, height=32, exif_ifd={0x9003: "2024:07:01 10:00:00"})
    synth.make_image(d / "IMG_0002.JPG", width=40, height=32, exif_ifd={0x9003: "2024:07:01 10:00:00"})  # same second
    synth.make_video(d / "MOV_0003.MP4", frames=3, width=32, height=32,
                     metadata={"creation_time": "2024-07-01T11:30:00.000000Z"})
    synth.make_image(d / "noexif.png", width=16, height=16)
    os.utime(d / "noexif.png", (1_700_000_000, 1_700_000_000))
    (d / "zero.jpg").write_bytes(b"")
    return d


def test_album_named_by_capture_date(phone: Path, tmp_path: Path) -> None:
    files = files_in_folder(phone)
    r = sync_album(files, tmp_path / "photos", "2024/Summer")
    dest = tmp_path / "photos" / "2024" / "Summer"
    names = sorted(p.name for p in dest.iterdir())
    from datetime import datetime

    by_mtime = datetime.fromtimestamp(1_700_000_000).strftime("%Y-%m-%d_%H%M%S") + ".png"
    assert names == sorted(["2024-07-01_100000.jpg", "2024-07-01_100000_2.jpg", "2024-07-01_113000.mp4", by_mtime,
                            datetime.fromtimestamp(os.stat(phone / "zero.jpg").st_mtime).strftime(
                                "%Y-%m-%d_%H%M%S") + ".jpg"])
    reasons = {Path(p.source).name: p.reason for p in r.plan}
    assert "modification time" in reasons["noexif.png"]
    assert sha(dest / "2024-07-01_113000.mp4") == sha(phone / "MOV_0003.MP4")
    again = sync_album(files_in_folder(phone), tmp_path / "photos", "2024/Summer")
    assert again.placed == 0 and again.skipped == 5


def test_album_links_dry_run_and_bad_category(phone: Path, tmp_path: Path) -> None:
    files = [f for f in files_in_folder(phone) if f.captured]
    dry = sync_album(files, tmp_path / "p", "A", dry_run=True)
    assert dry.placed == 3 and not (tmp_path / "p").exists()
    sync_album(files, tmp_path / "p", "links", mode="link")
    assert all(p.is_symlink() for p in (tmp_path / "p" / "links").iterdir())
    sync_album(files, tmp_path / "p", "hard", mode="hardlink")
    inodes = {p.stat().st_ino for p in (tmp_path / "p" / "hard").iterdir()}
    assert inodes == {os.stat(f.source).st_ino for f in files}
    for bad in ("../escape", "/abs", "", "a/../../b"):
        with pytest.raises(UsageError):
            sync_album(files, tmp_path / "p", bad)
    with pytest.raises(UsageError):
        sync_album(files, tmp_path / "p", "ok", mode="move")


def test_album_from_a_catalog_selection(ix: MediaIndexer, tmp_path: Path) -> None:
    ids = [a.id for a in ix.search(kind="video")]
    ix.tag(ids[0], ["portfolio"])
    (r,) = ix.run_workflow({"action": "sync_album", "tags": "portfolio", "root": str(tmp_path / "out"),
                            "category": "Portfolio", "pattern": "{date:%Y}_{name}"})
    assert r["status"] == "ok" and r["result"]["placed"] == 1
    (placed,) = (tmp_path / "out" / "Portfolio").iterdir()
    assert placed.name.endswith(("A.mov", "B.mp4"))
    (r,) = ix.run_workflow({"action": "sync_album", "assets": ids, "root": str(tmp_path / "out"),
                            "category": "All", "mode": "hardlink"})
    assert r["result"]["placed"] == 2


def test_album_file_without_a_readable_source(tmp_path: Path) -> None:
    r = sync_album([AlbumFile(str(tmp_path / "gone.jpg"), None)], tmp_path / "p", "x")
    assert r.failed == 1 and r.plan[0].action == "fail"


def test_a_backup_root_that_is_not_there_is_not_made_unless_asked(ix: MediaIndexer, tmp_path: Path) -> None:
    """A backup disk that is not mounted leaves an empty mount point (or nothing): making the folder there would
    fill the system disk with the backup. The step fails, dry run included, and creates nothing; with
    "create_root": true the folder is made."""
    disk = tmp_path / "mnt" / "backup-disk"
    disk.mkdir(parents=True)  # the mount point, disk not mounted
    for dry in (True, False):
        (r,) = ix.run_workflow({"action": "backup", "backup_root": str(disk / "studio")}, dry_run=dry)
        assert r["status"] == "failed" and "no such folder" in r["error"] and "create_root" in r["error"]
    assert list(disk.iterdir()) == []
    (r,) = ix.run_workflow({"action": "backup", "backup_root": str(disk / "studio"), "create_root": True})
    assert r["status"] == "ok" and r["result"]["copied"] == 3


def test_album_stops_on_a_full_disk_instead_of_trying_every_file(phone: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """sync_album tried every remaining file once its disk was full. The second copy's write fails with ENOSPC
    (injected at fileops' one write: a real small file system needs root to mount)."""
    import errno

    from bridge.library import fileops

    real, calls = fileops._write_all, []

    def write(fd: int, data: bytes) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(fileops, "_write_all", write)
    files = [f for f in files_in_folder(phone) if f.source.endswith((".JPG", ".MP4"))]
    r = sync_album(files, tmp_path / "photos", "Summer")
    assert (r.placed, r.failed, r.not_attempted) == (1, 1, 1) and len(calls) == 2
    stop = r.plan[-1]
    assert stop.action == "fail" and stop.reason.startswith("album stopped: No space left on device")
    assert not list((tmp_path / "photos").rglob("*mediaidx-part"))
