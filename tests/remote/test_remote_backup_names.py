"""What a backup of a remote root (real S3, SFTP and SMB servers on loopback) says about each file: the file
as it is named, '@' included (only the root's user name could ever need hiding), and, when our own disk fails,
that the copy could not be written there, not that the server's file could not be read."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path

import pytest
from remote_servers import SECRET, Remote

from bridge import MediaIndexer
from bridge.library import fileops

# '@' in a file name and in a folder name, as cameras and render farms write them (take@2x, shot@v003)
FILES = {"a@b.mp4": os.urandom(4_000), "shots/x@2x/take@v003.mov": os.urandom(6_000), "gone@1.mov": b"g" * 500}


@pytest.fixture
def ix(remote: Remote, tmp_path: Path) -> MediaIndexer:
    for rel, data in FILES.items():
        remote.put(rel, data, mtime=1_700_000_000)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as indexer:
        s = indexer.scan(remote.url, probe=False, jobs=1)
        assert s.complete and s.counts["added"] == len(FILES), s.issues
        yield indexer


def backup(ix: MediaIndexer, dest: Path, dry_run: bool = False, progress: list | None = None) -> dict:
    dest.mkdir(parents=True, exist_ok=True)
    (r,) = ix.run_workflow({"action": "backup", "backup_root": str(dest)}, dry_run=dry_run,
                           progress=progress.append if progress is not None else None)
    assert SECRET not in json.dumps(r)
    return r


def test_plan_fail_progress_and_records_name_files_with_an_at_sign(ix: MediaIndexer, remote: Remote,
                                                                   tmp_path: Path) -> None:
    remote.delete("gone@1.mov")  # gone since the scan: its fail line must say which file it was
    bk = tmp_path / "bk"
    dry = backup(ix, bk, dry_run=True)
    events: list = []
    r = backup(ix, bk, progress=events)
    for res in (dry["result"], r["result"]):
        copies = sorted(p["source"] for p in res["plan"] if p["action"] == "copy")
        assert copies == sorted(f"{remote.url}/{rel}" for rel in FILES if rel != "gone@1.mov"), res["plan"]
        (fail,) = [p for p in res["plan"] if p["action"] == "fail"]
        assert fail["path"] == f"{remote.url}/gone@1.mov" and "no such file" in fail["reason"]
    shown = {e.path for e in events if e.phase == "work" and e.root == "backup"}
    assert shown >= {f"{remote.url}/{rel}" for rel in FILES}
    rows = sqlite3.connect(tmp_path / "cat.sqlite").execute("SELECT source, dest FROM backups").fetchall()
    assert sorted(rows) == sorted((f"{remote.url}/{rel}", str(bk / "proj" / rel))
                                  for rel in FILES if rel != "gone@1.mov")
    assert (bk / "proj" / "shots" / "x@2x" / "take@v003.mov").read_bytes() == FILES["shots/x@2x/take@v003.mov"]


def test_a_full_backup_disk_is_a_write_failure_not_the_servers(ix: MediaIndexer, remote: Remote, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up while an object is copied (injected at the one place fileops writes a copy's bytes:
    a real full file system needs a mount only root can make). The line blames our disk, names the
    destination, and the backup stops instead of reading every other object from the server for nothing."""
    reads: list[int] = []

    def write(fd: int, data: bytes) -> None:
        reads.append(len(data))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileops, "_write_all", write, raising=False)
    bk = tmp_path / "bk"
    r = backup(ix, bk)
    res = r["result"]
    assert r["status"] == "failed" and res["copied"] == 0 and res["failed"] == 1 and len(reads) == 1
    file_fail, stop = [p for p in res["plan"] if p["action"] == "fail"]
    assert file_fail["path"].startswith(str(bk / "proj")) and file_fail["source"].startswith(remote.url)
    assert file_fail["reason"] == f"cannot write {file_fail['path']}: {os.strerror(errno.ENOSPC)}"
    assert stop["reason"].startswith("backup stopped: the backup disk is full")
    assert res["not_attempted"] == len(FILES) - 1
