"""The backup workflow on remote roots (real S3, SFTP and SMB servers on loopback): remote files are copied,
verified and recorded like local ones, never over a different file, and a server that is gone costs only its
own files."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
import xxhash
from remote_servers import SECRET, Remote

from bridge import MediaIndexer

# A nested path, a top-level file and a name with a space: distinct sizes and contents.
FILES = {
    "a/b/sh010.mp4": os.urandom(150_000),
    "top.mov": os.urandom(5_000_000),  # more than one 4 MiB read
    "c/take 2.jpg": os.urandom(3_000),
}
LOCAL = {"clips/L.mp4": os.urandom(20_000)}


@pytest.fixture
def ix(remote: Remote, tmp_path: Path) -> MediaIndexer:
    """A catalog of the remote root (FILES) and a local one (LOCAL), both scanned."""
    for rel, data in FILES.items():
        remote.put(rel, data, mtime=1_700_000_000)
    local = tmp_path / "nas"
    for rel, data in LOCAL.items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as indexer:
        s = indexer.scan(remote.url, local, probe=False, jobs=1)
        assert s.complete and s.counts["added"] == len(FILES) + len(LOCAL), s.issues
        yield indexer


def backup(ix: MediaIndexer, dest: Path, dry_run: bool = False, progress: list | None = None) -> dict:
    dest.mkdir(parents=True, exist_ok=True)
    (r,) = ix.run_workflow({"action": "backup", "backup_root": str(dest)}, dry_run=dry_run,
                           progress=progress.append if progress is not None else None)
    assert SECRET not in json.dumps(r)
    return r


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in folder.rglob("*")}


def actions(r: dict, action: str) -> list[dict]:
    return [p for p in r["result"]["plan"] if p["action"] == action]


def test_remote_files_are_copied_verified_recorded_and_not_again(ix: MediaIndexer, remote: Remote,
                                                                 tmp_path: Path) -> None:
    bk = tmp_path / "bk"
    events: list = []
    r = backup(ix, bk, progress=events)
    assert r["status"] == "ok", r["error"]
    work = [(e.work_done, e.work_total, e.path) for e in events if e.phase == "work" and e.root == "backup"]
    assert {p for _, _, p in work} >= {f"{remote.url}/{rel}" for rel in FILES}  # progress names remote files
    assert max(w[0] for w in work) == max(w[1] for w in work) == len(FILES) + len(LOCAL)
    assert r["result"]["copied"] == len(FILES) + len(LOCAL) and r["result"]["failed"] == 0
    assert r["result"]["bytes_copied"] == sum(map(len, FILES.values())) + sum(map(len, LOCAL.values()))
    for rel, data in FILES.items():  # <backup_root>/<root folder name>/<path inside the root>
        assert (bk / "proj" / rel).read_bytes() == data
    assert (bk / "nas" / "clips" / "L.mp4").read_bytes() == LOCAL["clips/L.mp4"]
    assert not list(bk.rglob("*mediaidx-part"))  # no temporary file left
    rows = sqlite3.connect(tmp_path / "cat.sqlite").execute("SELECT source, dest, size, hash FROM backups").fetchall()
    recorded = {src: (dest, size, digest) for src, dest, size, digest in rows}
    for rel, data in FILES.items():
        assert recorded[f"{remote.url}/{rel}"] == (str(bk / "proj" / rel), len(data), xxhash.xxh3_128_hexdigest(data))
    assert len(rows) == len(FILES) + len(LOCAL)

    again = backup(ix, bk)
    assert again["status"] == "ok" and again["result"]["copied"] == 0
    assert again["result"]["skipped"] == len(FILES) + len(LOCAL)
    assert {p["reason"] for p in again["result"]["plan"]} == {"already backed up"}
    assert sqlite3.connect(tmp_path / "cat.sqlite").execute("SELECT count(*) FROM backups").fetchone() == (len(rows),)


def test_a_different_file_at_the_destination_is_a_conflict_left_untouched(ix: MediaIndexer,
                                                                          tmp_path: Path) -> None:
    squatter = tmp_path / "bk" / "proj" / "a" / "b" / "sh010.mp4"
    squatter.parent.mkdir(parents=True)
    squatter.write_bytes(b"x" * len(FILES["a/b/sh010.mp4"]))  # same size, other bytes
    r = backup(ix, tmp_path / "bk")
    assert r["status"] == "failed" and "conflict" in r["error"]
    (c,) = actions(r, "conflict")
    assert c["path"] == str(squatter) and "left untouched" in c["reason"]
    assert squatter.read_bytes() == b"x" * len(FILES["a/b/sh010.mp4"])
    assert r["result"]["copied"] == len(FILES) + len(LOCAL) - 1  # the others are still copied
    assert (tmp_path / "bk" / "proj" / "top.mov").read_bytes() == FILES["top.mov"]


def test_dry_run_plans_the_same_copies_reads_no_content_writes_nothing(ix: MediaIndexer, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.storage import remote as remote_mod
    from bridge.storage import s3

    bk = tmp_path / "bk"
    (bk / "proj").mkdir(parents=True)
    (bk / "proj" / "notes.txt").write_text("the backup disk's own file")
    before = tree(bk)
    catalog_before = (tmp_path / "cat.sqlite").read_bytes()
    opened: list[bytes] = []
    for cls in (remote_mod.RemoteStorage, s3.S3Storage):
        real = cls.__dict__["open"]
        monkeypatch.setattr(cls, "open", lambda self, rel, *a, _real=real, **k: (opened.append(rel),
                                                                                 _real(self, rel, *a, **k))[1])
    dry = backup(ix, bk, dry_run=True)
    assert dry["status"] == "ok" and dry["dry_run"] is True
    assert opened == []  # no object's content was read
    assert tree(bk) == before and (tmp_path / "cat.sqlite").read_bytes() == catalog_before
    planned = sorted((p["path"], p["source"]) for p in actions(dry, "copy"))
    assert {p for p, _ in planned} >= {str(bk / "proj" / rel) for rel in FILES}

    real = backup(ix, bk)
    assert sorted((p["path"], p["source"]) for p in actions(real, "copy")) == planned
    assert dry["result"]["copied"] == real["result"]["copied"] == len(FILES) + len(LOCAL)
    assert dry["result"]["bytes_copied"] == real["result"]["bytes_copied"]
    assert len(opened) >= len(FILES)


def test_an_object_gone_fails_alone(ix: MediaIndexer, remote: Remote, tmp_path: Path) -> None:
    remote.delete("top.mov")
    r = backup(ix, tmp_path / "bk")
    assert r["status"] == "failed" and r["result"]["failed"] == 1
    (f,) = actions(r, "fail")
    assert f["path"] == f"{remote.url}/top.mov" and "no such file" in f["reason"]
    assert r["result"]["copied"] == len(FILES) + len(LOCAL) - 1
    assert (tmp_path / "bk" / "proj" / "a" / "b" / "sh010.mp4").read_bytes() == FILES["a/b/sh010.mp4"]
    assert not (tmp_path / "bk" / "proj" / "top.mov").exists()


def test_a_server_that_is_down_fails_its_files_and_local_ones_are_still_copied(ix: MediaIndexer, remote: Remote,
                                                                               tmp_path: Path) -> None:
    remote.stop()
    r = backup(ix, tmp_path / "bk")
    assert r["status"] == "failed" and r["result"]["failed"] == len(FILES)
    fails = actions(r, "fail")
    assert sorted(f["path"] for f in fails) == sorted(f"{remote.url}/{rel}" for rel in FILES)
    for f in fails:
        assert f["reason"].startswith(f"cannot connect to {remote.url}"), f
    assert r["result"]["copied"] == len(LOCAL)
    assert (tmp_path / "bk" / "nas" / "clips" / "L.mp4").read_bytes() == LOCAL["clips/L.mp4"]
    assert not (tmp_path / "bk" / "proj").exists()
    # The dry run says the same, and a second run once the server is back copies them.
    dry = backup(ix, tmp_path / "bk", dry_run=True)
    assert dry["result"]["failed"] == len(FILES)
    remote.start()
    r = backup(ix, tmp_path / "bk")
    assert r["status"] == "ok" and r["result"]["copied"] == len(FILES)
    for rel, data in FILES.items():
        assert (tmp_path / "bk" / "proj" / rel).read_bytes() == data


def test_a_file_replaced_while_it_is_copied_is_not_placed(ix: MediaIndexer, remote: Remote, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.storage.remote import RemoteFile

    new = os.urandom(len(FILES["top.mov"]))  # same size: only the content (and the version) changes
    real_read = RemoteFile.read
    replaced: list[str] = []

    def read(self: RemoteFile, n: int | None = -1) -> bytes:
        data = real_read(self, n)
        if self.name == "top.mov" and not replaced:  # the first 4 MiB of the old version are read
            replaced.append(self.name)
            remote.put("top.mov", new)
        return data

    with monkeypatch.context() as m:
        m.setattr(RemoteFile, "read", read)
        r = backup(ix, tmp_path / "bk")
    assert replaced and r["status"] == "failed" and r["result"]["failed"] == 1
    (f,) = actions(r, "fail")
    assert f["source"] == f"{remote.url}/top.mov" and "changed while it was read" in f["reason"], f
    assert not (tmp_path / "bk" / "proj" / "top.mov").exists()  # no mix of two versions placed
    assert not list((tmp_path / "bk").rglob("*mediaidx-part"))
    assert r["result"]["copied"] == len(FILES) + len(LOCAL) - 1
    r = backup(ix, tmp_path / "bk")  # the next backup copies the new version
    assert r["status"] == "ok" and r["result"]["copied"] == 1 and (tmp_path / "bk" / "proj" / "top.mov").read_bytes() == new
