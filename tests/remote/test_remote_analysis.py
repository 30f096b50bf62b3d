"""Shots, key frames and hero images of clips on S3, SFTP and SMB roots: ``scan --analyze`` and
``MediaIndexer.analyze`` decode remote clips through the storage's file object (the whole clip, read in
order with a large read-ahead), and a clip that cannot be analysed is reported, never skipped silently."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
from remote_servers import SECRET, Remote

from bridge import MediaIndexer
from bridge.analysis.synthclips import Segment, make_clip
from bridge.storage import StorageUnreachable
from bridge.storage.remote import RemoteFile

TOL = 2  # frames

SEGMENTS = [
    Segment("testsrc2", 40),
    Segment("smptebars", 45),
    Segment("testsrc", 45, "cut"),
    Segment("rgbtestsrc", 40, "cut"),
]


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list]:
    path = tmp_path_factory.mktemp("shots") / "cuts.mp4"
    truth = make_clip(path, SEGMENTS, width=320, height=240)
    return path.read_bytes(), truth


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} \
        if folder.exists() else {}


def _check_shots(ix: MediaIndexer, asset: int, truth: list) -> None:
    shots = ix.shots(asset)
    assert len(shots) == len(truth) + 1, shots
    for t, s in zip(truth, shots[1:], strict=True):
        assert abs(s["start_frame"] - t.frame) <= TOL and s["boundary"] == t.kind, (t, s)
    assert all(s["keyframe"] for s in shots)
    hero = ix.hero_image(asset)
    assert hero is not None and hero.is_file() and hero.read_bytes()[:3] == b"\xff\xd8\xff"


def test_scan_analyze_and_analyze_on_a_remote_root(remote: Remote, cut_clip: tuple[bytes, list],
                                                   tmp_path: Path) -> None:
    data, truth = cut_clip
    remote.put("show/sh010.mp4", data, mtime=1_700_000_000)
    remote.put("show/sh020.mp4", data + b"\0" * 16, mtime=1_700_000_000)  # same picture, other content
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        s = ix.scan(remote.url, jobs=2, analyze=True)
        assert s.complete and s.failed == 0 and s.counts["added"] == 2 and not s.issues, s.issues
        first = ix.get(remote.url + "/show/sh010.mp4").id
        _check_shots(ix, first, truth)
        # Analysed after a plain scan: MediaIndexer.analyze opens the asset through its root's storage.
        second = ix.get(remote.url + "/show/sh020.mp4").id
    with sqlite3.connect(cat) as conn:  # as if never analysed, and without a fingerprint (an old row)
        conn.execute("DELETE FROM shots WHERE asset_id = ?", (second,))
        conn.execute("DELETE FROM keyframes WHERE asset_id = ?", (second,))
        conn.execute("DELETE FROM analyses WHERE asset_id = ?", (second,))
        conn.execute("UPDATE assets SET fingerprint = NULL WHERE id = ?", (second,))
    conn.close()
    before, cache_before = cat.read_bytes(), _tree(cache)
    with MediaIndexer(cat, cache_dir=cache) as ix:
        plan = ix.analyze(second, dry_run=True)
        assert plan["dry_run"] and {p["action"] for p in plan["plan"]} >= {"analyze", "write"}
        assert any(p["path"] == remote.url + "/show/sh020.mp4" for p in plan["plan"]), plan
    assert cat.read_bytes() == before and _tree(cache) == cache_before  # dry: not a byte written
    with MediaIndexer(cat, cache_dir=cache) as ix:
        assert ix.shots(second) == [] and ix.hero_image(second) is None
        res = ix.analyze(second)
        assert not res["dry_run"] and res["error"] is None and res["shots"] == len(truth) + 1, res
        _check_shots(ix, second, truth)


def test_a_remote_clip_that_cannot_be_analysed_is_reported(remote: Remote, cut_clip: tuple[bytes, list],
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe and thumbnail read the clip; its analysis then meets a read error (the object changed on
    the server): the asset is catalogued, and the scan's issues say it was not analysed. MediaIndexer.analyze
    meeting a storage that stopped answering raises one error naming the asset's URL."""
    def broken(self: RemoteFile, ahead: int = 0) -> None:
        def fail(start: int, end: int) -> bytes:
            raise OSError(errno.EIO, "short read (the file changed while it was read)")
        self._fetch = fail  # type: ignore[method-assign]
        self._blocks.clear()

    monkeypatch.setattr(RemoteFile, "sequential", broken)
    remote.put("show/sh010.mp4", cut_clip[0], mtime=1_700_000_000)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(remote.url, jobs=1, analyze=True)  # in this process, so the patch applies
        assert s.complete and s.failed == 0 and s.counts["added"] == 1
        url = remote.url + "/show/sh010.mp4"
        assert [(i.path, i.reason) for i in s.issues] == [
            (url, "not analysed: cannot read: short read (the file changed while it was read)")], s.issues
        asset = ix.get(url)
        assert asset.status == "ok" and ix.shots(asset.id) == [] and ix.hero_image(asset.id) is None

        def gone(self: RemoteFile, ahead: int = 0) -> None:
            def fail(start: int, end: int) -> bytes:
                raise StorageUnreachable(errno.EIO, "reading: connection refused (gave up after 3 tries)")
            self._fetch = fail  # type: ignore[method-assign]
            self._blocks.clear()

        monkeypatch.setattr(RemoteFile, "sequential", gone)
        with pytest.raises(StorageUnreachable) as err:
            ix.analyze(asset.id)
        assert err.value.filename == url and url in str(err.value) and SECRET not in str(err.value)
        assert ix.shots(asset.id) == []
