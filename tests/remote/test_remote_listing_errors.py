"""A listing error is reported only when it is the server's: a bug in our listing code fails the scan loudly.

Per-folder listing errors were caught with a bare ``except Exception``, so a TypeError or KeyError in our
code read as "unreadable folder" in the scan's issues (and in ``check``, as "cannot use this root"). Now only
what the storage libraries raise for a failing server (OSError, botocore/asyncssh/smbprotocol errors...) is
reported; anything else propagates, and the catalog stays consistent.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from remote_servers import FolderRemote, Remote

from bridge import MediaIndexer, synth
from bridge.errors import RootUnavailableError
from bridge.storage import s3 as s3_mod
from bridge.storage import sftp as sftp_mod
from bridge.storage import smb as smb_mod
from bridge.storage.base import FileStat
from bridge.storage.remote import RemoteStorage
from bridge.storage.s3 import S3Storage

FOLDERS = [f"f{i}" for i in range(5)]
BUGGY = b"clip3.mp4"  # the file whose listing entry hits the injected bug (in folder f3)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    d = tmp_path_factory.mktemp("clips")
    return [synth.make_video(d / f"c{i}.mp4", frames=6 + 2 * i, width=32, height=24).read_bytes()
            for i in range(len(FOLDERS))]


def _fill(remote: Remote, clips: list[bytes]) -> None:
    for i, folder in enumerate(FOLDERS):
        remote.put(f"{folder}/clip{i}.mp4", clips[i], mtime=1_700_000_000 + i)


def _backend_module(remote: Remote):
    return {"s3": s3_mod, "sftp": sftp_mod, "smb": smb_mod}[remote.kind]


def _inject_bug(monkeypatch: pytest.MonkeyPatch, remote: Remote) -> None:
    """A TypeError where the backend builds one listing entry, as a bug in our own code would raise it."""

    def buggy_filestat(name: bytes, *args: object, **kw: object) -> FileStat:
        if name == BUGGY:
            raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")
        return FileStat(name, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(_backend_module(remote), "FileStat", buggy_filestat)


def _catalog_state(cat: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """(assets, folders) rows, after checking the file itself is sound."""
    with sqlite3.connect(cat) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assets = db.execute("SELECT id, name, status, size, fingerprint IS NOT NULL FROM assets ORDER BY id").fetchall()
        folders = db.execute("SELECT id, signature FROM folders ORDER BY id").fetchall()
    db.close()
    return assets, folders


def test_a_bug_in_the_listing_fails_the_rescan_and_changes_nothing(
        remote: Remote, clips: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(remote, clips)
    cat = tmp_path / "cat.sqlite"
    with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(remote.url, jobs=1)
        assert s.complete and s.counts["added"] == len(FOLDERS) and not s.issues, s.issues
    before = _catalog_state(cat)
    remote.put("f4/new.mp4", clips[0][:-10], mtime=1_700_001_000)  # something for the rescan to write

    _inject_bug(monkeypatch, remote)
    with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix, pytest.raises(TypeError, match="unsupported"):
        ix.scan(remote.url, jobs=1)
    # Not one folder reported unreadable and its files left alone: the scan failed, and nothing is half done
    # (no file marked missing, no row added without its folder's listing being complete).
    assert _catalog_state(cat) == before

    monkeypatch.undo()
    for k, v in remote.env.items():
        monkeypatch.setenv(k, v)
    with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(remote.url, jobs=1)
        assert s.complete and s.counts["added"] == 1 and s.counts["missing"] == 0 and not s.issues, s.issues


def test_a_bug_in_the_first_listing_fails_the_scan_and_leaves_a_sound_catalog(
        remote: Remote, clips: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(remote, clips)
    _inject_bug(monkeypatch, remote)
    cat = tmp_path / "cat.sqlite"
    with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix, pytest.raises(TypeError, match="unsupported"):
        ix.scan(remote.url, jobs=1)
    assets, _folders = _catalog_state(cat)
    # whatever was written is whole: complete rows only, and never the file whose listing failed
    assert all(status == "ok" and has_fp for _id, _name, status, _size, has_fp in assets), assets
    assert BUGGY.decode() not in {name for _id, name, *_ in assets}
    monkeypatch.undo()
    for k, v in remote.env.items():
        monkeypatch.setenv(k, v)
    with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(remote.url, jobs=1)
        assert s.complete and not s.issues, s.issues
        assert len(ix.search(None, status=None, limit=100)) == len(FOLDERS)


def test_a_bug_while_checking_the_root_is_not_read_as_an_unusable_root(
        remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote.put("f0/x.mp4", b"\0" * 10)

    def bug(*a: object, **k: object) -> object:
        raise KeyError("Contents")

    # the first call of our own code inside each backend's check
    target = {"s3": (s3_mod.S3Storage, "_list_page"), "sftp": (sftp_mod.SFTPStorage, "_info"),
              "smb": (smb_mod.SMBStorage, "_unc")}[remote.kind]
    monkeypatch.setattr(*target, bug)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix, pytest.raises(KeyError):
        ix.scan(remote.url, jobs=1)
    monkeypatch.undo()
    for k, v in remote.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(tmp_path / "none.toml"))
    # a server-side refusal is still the one-line root error
    wrong = "not-the-password"
    key = {"s3": "MEDIAIDX_S3_SECRET_ACCESS_KEY", "sftp": "MEDIAIDX_SFTP_PASSWORD", "smb": "MEDIAIDX_SMB_PASSWORD"}
    monkeypatch.setenv(key[remote.kind], wrong)
    # moto takes any key: on S3, ask for a bucket that is not there instead
    url = remote.url.replace("/footage-", "/nobucket-") if remote.kind == "s3" else remote.url
    with MediaIndexer(tmp_path / "cat2.sqlite", cache_dir=tmp_path / "cache") as ix, \
            pytest.raises(RootUnavailableError):
        ix.scan(url, jobs=1)


def test_a_server_side_listing_failure_is_still_an_issue_and_the_scan_goes_on(
        remote: Remote, clips: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SFTP and SMB: a folder removed on the server between the listing of its parent and its own listing
    (the library's real 'no such folder'). S3: the bucket deleted between two listing pages."""
    _fill(remote, clips)
    monkeypatch.setattr(RemoteStorage, "BACKOFF", (0.05, 0.05, 0.05))
    if isinstance(remote, FolderRemote):
        backend = {"sftp": sftp_mod.SFTPStorage, "smb": smb_mod.SMBStorage}[remote.kind]
        real = backend._list_dir

        def list_dir(self: RemoteStorage, rel: bytes, accept):  # type: ignore[no-untyped-def]
            if rel == b"f3" and (remote.share / "proj" / "f3").exists():
                shutil.rmtree(remote.share / "proj" / "f3")  # gone on the server, as another client would do
            return real(self, rel, accept)

        monkeypatch.setattr(backend, "_list_dir", list_dir)
    else:
        monkeypatch.setattr(S3Storage, "PAGE", 2)
        real_page = S3Storage._list_page
        gone: list[bool] = []

        def list_page(self: S3Storage, token: str | None, max_keys: int | None = None):  # type: ignore[no-untyped-def]
            if token and not gone:  # between two pages, the bucket is deleted on the server
                gone.append(True)
                c, bucket = remote.client, remote.bucket  # type: ignore[attr-defined]
                for obj in c.list_objects_v2(Bucket=bucket).get("Contents", ()):
                    c.delete_object(Bucket=bucket, Key=obj["Key"])
                c.delete_bucket(Bucket=bucket)
            return real_page(self, token, max_keys)

        monkeypatch.setattr(S3Storage, "_list_page", list_page)

    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(remote.url, jobs=1)
        names = {a.name for a in ix.search(None, status=None, limit=100)}
    issues = {i.path.rstrip("/").rpartition("/")[2]: i.reason for i in s.issues}
    if isinstance(remote, FolderRemote):
        assert set(issues) == {"f3"}, s.issues
        assert names == {f"clip{i}.mp4" for i in range(len(FOLDERS)) if i != 3}  # the scan went on after f3
    else:
        # the root (everything not listed yet) and the folder still open are reported; f0 was complete
        assert gone and set(issues) == {"proj", "f1"}, s.issues
        assert all("bucket does not exist" in r for r in issues.values()), s.issues
        assert "clip0.mp4" in names
    _catalog_state(tmp_path / "cat.sqlite")
