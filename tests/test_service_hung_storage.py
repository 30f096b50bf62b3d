"""A local file system that hangs (an NFS hard mount, a dead SMB share) must not freeze the bridge: its one loop
thread serves every client, so a fetch stuck in the file system may hold up that fetch only. The hang is
injected at the calls the bridge makes for a fetch (the containment check, the read of a chunk), for one file,
on a real bridge on loopback with real clients; the test releases it at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inprocess_bridge import Hang, bridge_in_process, connect, fds_on, wait_for

from blender_mediaidx.core import client as client_mod
from blender_mediaidx.core import protocol as P
from blender_mediaidx.core.client import BridgeClient
from bridge import MediaIndexer
from bridge.service import server as server_mod
from bridge.service.server import BridgeServer

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads open files from /proc")

LOOP = "bridge-loop"  # the name of the bridge's loop thread here


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(media root, catalog, cache): a 4 MiB file the tests hang on, and a small one."""
    root = tmp_path / "nas"
    root.mkdir()
    (root / "stuck.mov").write_bytes(os.urandom(4 << 20))
    (root / "other.mov").write_bytes(os.urandom(300_000))
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(root, probe=False)
    return root, cat, cache


@pytest.fixture
def bridge(library) -> Iterator[BridgeServer]:
    """A bridge in this process (so a test can hang its file system calls and look at its transfers)."""
    _root, cat, cache = library
    with bridge_in_process(cat, cache, name=LOOP) as server:
        yield server


def answered(c: BridgeClient, root: Path) -> None:
    """The bridge still answers this client: a ping, a search."""
    assert "time" in c.call("ping", timeout_s=5)
    found = c.call("search", {"query": "other"}, timeout_s=5)
    assert [a["name"] for a in found["results"]] == ["other.mov"]


@pytest.mark.parametrize("channel", ["frames", "auto"])
def test_a_fetch_stuck_opening_a_file_freezes_nobody_and_completes_when_the_mount_returns(
        library, bridge: BridgeServer, tmp_path: Path, monkeypatch, channel: str) -> None:
    """The containment check (realpath, stat) of a file on a hung mount ran on the loop thread: every client of
    the bridge (pings, searches, other fetches) waited with it. Now only that fetch waits; when the mount
    answers again it completes, verified (frames, and the same-host data channel)."""
    root, _cat, _cache = library
    stuck = root / "stuck.mov"
    hang = Hang(server_mod.contained, lambda path, roots: os.fsdecode(path) == str(stuck))
    monkeypatch.setattr(server_mod, "contained", hang)
    with connect(bridge.bound, "blender-a", data_channel=channel) as a, connect(bridge.bound, "blender-b") as b:
        t = a.fetch(tmp_path / "a" / "stuck.mov", path=str(stuck))
        assert hang.wait_entered()
        try:
            answered(b, root)
            assert "time" in a.call("ping", timeout_s=5)  # the stuck fetch's own client too
            other = b.fetch(tmp_path / "b" / "other.mov", path=str(root / "other.mov"))
            assert b.wait(lambda: other.finished, 10) and other.done, other.error
            assert (tmp_path / "b" / "other.mov").read_bytes() == (root / "other.mov").read_bytes()
            assert not t.finished
        finally:
            hang.release()
        assert a.wait(lambda: t.finished, 20) and t.done, t.error
        assert t.channel == ("frames" if channel == "frames" else "unix")
        assert (tmp_path / "a" / "stuck.mov").read_bytes() == stuck.read_bytes()
    assert hang.blocked_threads and LOOP not in hang.blocked_threads


def test_a_read_stuck_mid_transfer_freezes_nobody_can_be_aborted_and_resumes(
        library, bridge: BridgeServer, tmp_path: Path, monkeypatch) -> None:
    """Chunks of a local file were read with preadv on the loop thread: a read that hangs mid-file froze the
    bridge. Now it stalls that transfer's reader only: other clients are served, the transfer's own client can
    abort it (the bridge drops it at once; the reader closes the file when the read returns), and a new fetch
    resumes from the part and verifies."""
    root, _cat, _cache = library
    stuck = root / "stuck.mov"
    ino = stuck.stat().st_ino

    def on_the_stuck_file_past_1mib(fd: int, buffers: Any, offset: int, *rest: Any) -> bool:
        try:
            return offset >= 1 << 20 and os.fstat(fd).st_ino == ino
        except OSError:
            return False

    hang = Hang(os.preadv, on_the_stuck_file_past_1mib)
    monkeypatch.setattr(os, "preadv", hang)
    dest = tmp_path / "a" / "stuck.mov"
    with connect(bridge.bound, "blender-a", data_channel="frames") as a, connect(bridge.bound, "blender-b") as b:
        t = a.fetch(dest, path=str(stuck), chunk_size=64 << 10, window=4)
        assert hang.wait_entered()
        try:
            answered(b, root)
            assert a.wait(lambda: t.transfer_id is not None, 5)
            tid = t.transfer_id
            assert tid in bridge.transfers
            source = bridge.transfers[tid].source
            a.notify("abort", {"transfer": tid})
            assert wait_for(lambda: tid not in bridge.transfers), "the abort was not handled"
            assert "time" in a.call("ping", timeout_s=5)
            assert source.thread.is_alive()  # still in the hung read
        finally:
            hang.release()
        source.thread.join(10)
        assert not source.thread.is_alive()
        assert not fds_on(stuck)  # the reader closed the file once its read returned
    got = t.received
    assert 0 < got < stuck.stat().st_size and t.part.stat().st_size == got
    with connect(bridge.bound, "blender-a2", data_channel="frames") as a:
        again = a.fetch(dest, path=str(stuck), chunk_size=64 << 10, window=4)
        assert a.wait(lambda: again.finished, 20) and again.done, again.error
        assert again.resumed_from == got  # the bridge hashed the part the client had, on the source's thread
    assert dest.read_bytes() == stuck.read_bytes()
    assert hang.blocked_threads and LOOP not in hang.blocked_threads


@pytest.mark.parametrize("channel", ["frames", "auto"])
def test_a_fetch_reply_that_comes_after_the_client_gave_up_is_aborted(
        library, bridge: BridgeServer, tmp_path: Path, monkeypatch, channel: str) -> None:
    """A client that stops waiting for a fetch's reply (it fails with `timeout`) dropped the late reply, so the
    bridge kept that transfer (a file open, chunks or a data-channel ticket waiting) until its 120 s idle sweep.
    The client now aborts it, and the bridge drops it."""
    root, _cat, _cache = library
    stuck = root / "stuck.mov"
    monkeypatch.setattr(client_mod, "FETCH_REPLY_TIMEOUT_S", 1.0)
    hang = Hang(server_mod.contained, lambda path, roots: os.fsdecode(path) == str(stuck))
    monkeypatch.setattr(server_mod, "contained", hang)
    aborted: list[int] = []
    real_abort = bridge.data.abort
    monkeypatch.setattr(bridge.data, "abort", lambda tid, identity: (aborted.append(tid), real_abort(tid, identity)))
    tid_before = bridge._next_tid
    with connect(bridge.bound, "blender-a", data_channel=channel) as a:
        t = a.fetch(tmp_path / "a" / "stuck.mov", path=str(stuck), chunk_size=64 << 10, window=1)
        assert hang.wait_entered()
        try:
            assert a.wait(lambda: t.finished, 10), "the client never gave up"
            assert t.error is not None and t.error.code == P.TIMEOUT, t.error  # connected, no answer: timeout
        finally:
            hang.release()
        # The bridge opens the file and answers late, registering a transfer (frames: 1 chunk sent, then it waits
        # for credit that never comes; data channel: a ticket nobody presents).
        assert wait_for(lambda: bridge._next_tid > tid_before), "the bridge never answered"
        tid = tid_before
        assert wait_for(lambda: tid in aborted), "the client did not abort the transfer it no longer wants"
        assert wait_for(lambda: tid not in bridge.transfers and tid not in bridge.data._active)
        assert not any(j.tid == tid for j in bridge.data._tickets.values())
        assert wait_for(lambda: not fds_on(stuck)), "the bridge still holds the file open"
        assert "time" in a.call("ping", timeout_s=5)


@pytest.mark.parametrize("op", ["probe", "scan"])
def test_probe_and_scan_checks_on_a_hung_mount_freeze_nobody(library, bridge: BridgeServer, monkeypatch,
                                                             op: str) -> None:
    """`probe` resolved and stat'ed its path, `scan` resolved its roots and the allowed folders, on the loop
    thread. Both checks run on workers now: while one hangs the bridge answers everyone, and the request is
    answered once the mount is back."""
    root, _cat, _cache = library
    stuck = root / "stuck.mov"
    if op == "probe":
        hang = Hang(server_mod.contained, lambda path, roots: os.fsdecode(path) == str(stuck))
        monkeypatch.setattr(server_mod, "contained", hang)
        args: dict[str, Any] = {"path": str(stuck)}
    else:
        hang = Hang(bridge.policy.check_scan, lambda roots, registered: True)
        monkeypatch.setattr(bridge.policy, "check_scan", hang)
        args = {"roots": [str(root)], "probe": False}
    with connect(bridge.bound, "blender-a") as a, connect(bridge.bound, "blender-b") as b:
        replies: list[Any] = []
        a.request(op, args, on_reply=replies.append, on_error=replies.append, timeout_s=30)
        assert hang.wait_entered()
        try:
            answered(b, root)
        finally:
            hang.release()
        assert a.wait(lambda: replies, 20)
    if op == "probe":  # not media: the probe's own error, not a stuck bridge
        assert isinstance(replies[0], P.RemoteError) and replies[0].code == P.BAD_REQUEST, replies
        assert "media file" in replies[0].message
    else:
        assert isinstance(replies[0], dict) and "job" in replies[0], replies
    assert LOOP not in hang.blocked_threads
