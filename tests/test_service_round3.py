"""Round 3 of the bridge's file operations (review of 520d2d7): a slow but healthy storage is waited for, a push
of many shots all arrives, a dead root holds up only its own paths, a read that hangs for good is reported, and
probes and thumbnails keep their answers while a mount hangs. A real bridge in this process on loopback, real
clients; the hangs are injected at the file system calls and released at the end of each test."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from inprocess_bridge import bridge_in_process

from blender_mediaidx.core import protocol as P
from blender_mediaidx.core.client import BridgeClient
from bridge import MediaIndexer
from bridge.service import fileops as fileops_mod
from bridge.service import server as server_mod

STUCK_S = 60  # an injected hang lasts at most this long (each test releases it long before)


def make_library(tmp_path: Path, names: tuple[str, ...], files: int = 3) -> tuple[list[Path], Path, Path]:
    """(roots, catalog, cache): ``files`` small files in each root, scanned in that order."""
    roots = []
    for n in names:
        d = tmp_path / n
        d.mkdir()
        for i in range(files):
            (d / f"f{i}.mov").write_bytes(os.urandom(50_000))
        roots.append(d)
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        for d in roots:
            ix.scan(d, probe=False)
    return roots, cat, cache


@pytest.fixture
def start() -> Iterator[Any]:
    with contextlib.ExitStack() as stack:
        yield lambda cat, cache: stack.enter_context(bridge_in_process(cat, cache))


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of the test (whatever happened): every injected hang ends then."""
    ev = threading.Event()
    yield ev
    ev.set()


def hang_under(monkeypatch: Any, prefix: Path, released: threading.Event, name: str = "lstat") -> None:
    """``os.<name>`` blocks for paths under ``prefix`` until ``released`` (a dead NFS hard mount)."""
    real = getattr(os, name)
    pb = os.fsencode(str(prefix))

    def fake(path: Any, *a: Any, **k: Any) -> Any:
        if isinstance(path, str | bytes) and os.fsencode(path).startswith(pb):
            released.wait(STUCK_S)
        return real(path, *a, **k)

    monkeypatch.setattr(os, name, fake)


def connect(endpoint: str, name: str) -> BridgeClient:
    c = BridgeClient(endpoint, name=name, heartbeat_s=0.2, dead_after_s=5.0, data_channel="frames").start()
    assert c.wait(lambda: c.state == "connected", 10)
    return c


class RawPeer:
    """A client speaking the protocol by hand (to see each reply and event)."""

    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.seen: list[dict[str, Any]] = []

    def send(self, op: str, args: dict[str, Any]) -> Any:
        m = P.request(op, args, deadline_ms=None)
        self.sock.send(P.encode(m))
        return m["id"]

    def pump(self, until: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if until():
                return True
            if self.sock.poll(50):
                self.seen.append(P.decode(self.sock.recv_multipart()[0]))
        return until()

    def replies(self, rid: Any) -> list[dict[str, Any]]:
        return [m for m in self.seen if m.get("id") == rid and "event" not in m]

    def close(self) -> None:
        self.sock.close(0)


def fetch_all(c: BridgeClient, tmp_path: Path, paths: list[Path], timeout: float = 90) -> list[Any]:
    ts = [c.fetch(tmp_path / "dl" / f"{i}-{p.name}", path=str(p)) for i, p in enumerate(paths)]
    assert c.wait(lambda: all(t.finished for t in ts), timeout), "fetches never ended"
    return ts


# -- F2: a slow but healthy storage ---------------------------------------------------------------------------------
def test_a_slow_but_healthy_storage_is_waited_for_not_refused(tmp_path: Path, start: Any, monkeypatch) -> None:
    """10 plates pushed at once from a NAS that takes 3 s per check (waking its disks): the calls queued
    behind the 4 running were refused 'not answering' after 5 s though every call answered."""
    (nas,), cat, cache = make_library(tmp_path, ("nas",), files=10)
    server = start(cat, cache)
    real = server_mod.contained

    def slow(path: Any, roots: list[str]) -> bytes:
        time.sleep(3)
        return real(path, roots)

    monkeypatch.setattr(server_mod, "contained", slow)
    c = connect(server.bound, "blender")
    try:
        ts = fetch_all(c, tmp_path, [nas / f"f{i}.mov" for i in range(10)])
        assert [t.error for t in ts if t.error] == []
        assert all(t.done for t in ts)
    finally:
        c.stop()


def test_a_slow_first_connect_the_others_wait_on_is_waited_for(tmp_path: Path, start: Any, monkeypatch) -> None:
    """One slow first connect that the other calls wait on (a remote storage connecting holds its lock): the
    last calls, queued over 5 s behind calls that all finished, were refused. A remote root's limit covers its
    own connect timeouts and retries (a 6 s connect refused 6 of 10)."""
    assert fileops_mod.stuck_after("sftp://host/share") >= 40
    assert fileops_mod.stuck_after("s3://bucket/x") >= 40 and fileops_mod.stuck_after("smb://h/s") >= 40
    (nas,), cat, cache = make_library(tmp_path, ("nas",), files=10)
    server = start(cat, cache)
    real = server_mod.contained
    lock, first = threading.Lock(), []

    def connecting(path: Any, roots: list[str]) -> bytes:
        with lock:
            if not first:
                time.sleep(3)  # under a local root's limit: the rest wait on it, then each takes a moment
                first.append(1)
        time.sleep(1.5)
        return real(path, roots)

    monkeypatch.setattr(server_mod, "contained", connecting)
    c = connect(server.bound, "blender")
    try:
        ts = fetch_all(c, tmp_path, [nas / f"f{i}.mov" for i in range(10)])
        assert [t.error for t in ts if t.error] == []
    finally:
        c.stop()


def test_a_storage_whose_calls_all_hang_is_still_refused(tmp_path: Path, start: Any, monkeypatch,
                                                         release: threading.Event) -> None:
    """What the limit is for: 4 calls stuck for good, the next ones answer unavailable (not after 300 s)."""
    (nas,), cat, cache = make_library(tmp_path, ("nas",), files=6)
    hang_under(monkeypatch, nas, release)
    server = start(cat, cache)
    c = connect(server.bound, "blender")
    try:
        ts = [c.fetch(tmp_path / "dl" / f"{i}.mov", path=str(nas / f"f{i}.mov")) for i in range(6)]
        assert c.wait(lambda: sum(t.finished for t in ts) >= 2, 60), "a hung storage's waiting calls never ended"
        refused = [t.error for t in ts if t.finished]
        assert all(e is not None and e.code == P.UNAVAILABLE and "not answering" in e.message for e in refused)
    finally:
        release.set()
        c.stop()


# -- F3: a push of many shots ----------------------------------------------------------------------------------------
def test_a_push_of_fifty_shots_all_arrives(tmp_path: Path, start: Any) -> None:
    """Blender fetches every pushed shot at once (the web allows 500): past 32 they were refused, never
    retried. They wait on the bridge and start as earlier ones finish."""
    (nas,), cat, cache = make_library(tmp_path, ("nas",), files=50)
    server = start(cat, cache)
    c = connect(server.bound, "blender")
    try:
        ts = fetch_all(c, tmp_path, [nas / f"f{i}.mov" for i in range(50)])
        assert [t.error for t in ts if t.error] == []
        for i, t in enumerate(ts):
            assert t.done and (tmp_path / "dl" / f"{i}-f{i}.mov").read_bytes() == (nas / f"f{i}.mov").read_bytes()
    finally:
        c.stop()


def test_the_bridge_queues_fetches_beyond_its_cap_and_starts_them_as_others_end(tmp_path: Path, start: Any) -> None:
    """A client that does not pace itself (another tool, an older Blender extension) sends 40 at once: the
    bridge keeps 32 open and starts the rest as they end, instead of refusing them."""
    (nas,), cat, cache = make_library(tmp_path, ("nas",), files=40)
    server = start(cat, cache)
    p = RawPeer(server.bound)
    try:
        rids = [p.send("fetch", {"path": str(nas / f"f{i}.mov"), "chunk": 64 << 10, "window": 64})
                for i in range(40)]
        done = lambda: [m for m in p.seen if m.get("event") == "fetch.done"]  # noqa: E731
        assert p.pump(lambda: len(done()) == 40, 90), (len(done()), [p.replies(r) for r in rids][-3:])
        assert all(p.replies(r)[0]["ok"] for r in rids), [p.replies(r) for r in rids if not p.replies(r)[0]["ok"]]
    finally:
        p.close()


# -- F1: a dead root that sorts first --------------------------------------------------------------------------------
def test_a_dead_root_that_sorts_first_does_not_hold_up_another_roots_fetches(
        tmp_path: Path, start: Any, monkeypatch, release: threading.Event) -> None:
    """Roots are listed by URL and the containment check resolved every root until one matched: a fetch from
    b_local hung in realpath(a_nas), then took b_local's slots and the fifth was refused."""
    (nas, local), cat, cache = make_library(tmp_path, ("a_nas", "b_local"))
    server = start(cat, cache)
    hang_under(monkeypatch, nas, release)
    hang_under(monkeypatch, nas, release, "stat")
    c = connect(server.bound, "blender")
    try:
        ts = fetch_all(c, tmp_path, [local / f"f{i % 3}.mov" for i in range(6)], timeout=30)
        assert [t.error for t in ts if t.error] == []
    finally:
        release.set()
        c.stop()


def test_a_symlink_out_of_its_root_is_still_refused(tmp_path: Path, start: Any) -> None:
    """Only the roots a path names are resolved now; a link out of them is refused as before, a link into
    another root is served."""
    (nas, local), cat, cache = make_library(tmp_path, ("a_nas", "b_local"))
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"x" * 100)
    (local / "escape.mov").symlink_to(secret)
    (local / "into_nas.mov").symlink_to(nas / "f0.mov")
    server = start(cat, cache)
    c = connect(server.bound, "blender")
    try:
        bad, good = fetch_all(c, tmp_path, [local / "escape.mov", local / "into_nas.mov"], timeout=30)
        assert bad.error is not None and bad.error.code == P.FORBIDDEN, bad.error
        assert good.done, good.error
    finally:
        c.stop()


# -- F4: a read that hangs for good -----------------------------------------------------------------------------------
def test_a_read_that_hangs_for_good_is_swept_and_reported(tmp_path: Path, start: Any, monkeypatch,
                                                          release: threading.Event) -> None:
    """A resume whose part's hash hits a dying mount: the source counted as active during any read, so the
    transfer was never swept and the client (no timeout before a resume's first chunk) waited forever."""
    (nas,), cat, cache = make_library(tmp_path, ("nas",), files=1)
    src = nas / "big.mov"
    src.write_bytes(os.urandom(4 << 20))
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(nas, probe=False)
    monkeypatch.setattr(server_mod, "TRANSFER_IDLE_S", 1.0)
    ino = src.stat().st_ino
    real = os.preadv

    def hung(fd: int, bufs: Any, off: int, *rest: Any) -> int:
        try:
            mine = os.fstat(fd).st_ino == ino
        except OSError:
            mine = False
        if mine:
            release.wait(STUCK_S)
        return real(fd, bufs, off, *rest)

    monkeypatch.setattr(os, "preadv", hung)
    server = start(cat, cache)
    st = src.stat()
    p = RawPeer(server.bound)
    try:
        rid = p.send("fetch", {"path": str(src), "offset": 1 << 20, "chunk": 1 << 20, "window": 4,
                               "expect": {"size": st.st_size, "mtime_ns": st.st_mtime_ns}})
        assert p.pump(lambda: p.replies(rid), 20)
        assert p.replies(rid)[0]["ok"], p.replies(rid)
        tid = p.replies(rid)[0]["result"]["transfer"]
        errors = lambda: [m for m in p.seen if m.get("event") == "fetch.error"]  # noqa: E731
        assert p.pump(errors, 30), "a transfer whose read hangs was never reported"
        assert errors()[0]["data"]["transfer"] == tid and errors()[0]["data"]["code"] == P.UNAVAILABLE
        assert tid not in server.transfers
    finally:
        release.set()
        p.close()


# -- F5: paths outside every root ---------------------------------------------------------------------------------------
def test_paths_outside_the_roots_under_a_dead_mount_leave_the_roots_alone(
        tmp_path: Path, start: Any, monkeypatch, release: threading.Event) -> None:
    """Each path outside the roots had a key (4 threads) of its own: 64 of them under a dead mount took every
    file-op thread, and every root's fetch was refused, blaming that root."""
    (root,), cat, cache = make_library(tmp_path, ("root",), files=1)
    dead = tmp_path / "deadmount"
    dead.mkdir()
    hang_under(monkeypatch, dead, release)
    server = start(cat, cache)
    peers = [RawPeer(server.bound) for _ in range(2)]
    c = connect(server.bound, "blender")
    try:
        for k in range(64):
            peers[k % 2].send("fetch", {"path": str(dead / f"x{k}.mov")})
        time.sleep(2)
        assert server.fileops.running() <= fileops_mod.FILE_OPS_PER_KEY
        (t,) = fetch_all(c, tmp_path, [root / "f0.mov"], timeout=30)
        assert t.done, t.error
        rel = RawPeer(server.bound)
        peers.append(rel)
        rid = rel.send("fetch", {"path": "relative/x.mov"})  # the text checks answer before any queue
        assert rel.pump(lambda: rel.replies(rid), 10)
        assert rel.replies(rid)[0]["error"]["code"] == P.FORBIDDEN
    finally:
        release.set()
        c.stop()
        for p in peers:
            p.close()


# -- F6: probe and thumbnail -----------------------------------------------------------------------------------------
def test_probes_of_a_hung_root_do_not_hold_up_probes_of_another(tmp_path: Path, start: Any, monkeypatch,
                                                                 release: threading.Event) -> None:
    """Probe checked its path on the 2 workers every probe and thumbnail share: 2 probes on a hung root left
    every other probe unanswered."""
    (local, nas), cat, cache = make_library(tmp_path, ("a_local", "z_nas"))
    server = start(cat, cache)
    hang_under(monkeypatch, nas, release)
    c = connect(server.bound, "blender")
    try:
        for i in range(3):
            c.request("probe", {"path": str(nas / f"f{i}.mov")}, timeout_s=STUCK_S)
        time.sleep(1)
        got: list[Any] = []
        c.request("probe", {"path": str(local / "f0.mov")}, on_reply=got.append, on_error=got.append,
                  timeout_s=STUCK_S)
        assert c.wait(lambda: got, 30), "a probe of a healthy root was never answered"
        thumb: list[Any] = []
        with MediaIndexer(cat, cache_dir=cache) as ix:
            asset = ix.get(str(local / "f1.mov"))
        c.request("thumbnail", {"asset": asset.id}, on_reply=thumb.append, on_error=thumb.append,
                  timeout_s=STUCK_S)
        assert c.wait(lambda: thumb, 60), "a thumbnail of a healthy root was never answered"
    finally:
        release.set()
        c.stop()


# -- F7: no thread to release a file with ----------------------------------------------------------------------------
def test_a_fetch_whose_file_cannot_be_handed_to_a_thread_is_answered_and_closed(
        tmp_path: Path, start: Any, monkeypatch) -> None:
    """Registering failed for want of a thread, and so did starting the thread that closes the file: no reply,
    and the fd leaked."""
    (nas,), cat, cache = make_library(tmp_path, ("nas",), files=1)
    src = nas / "f0.mov"
    server = start(cat, cache)
    real_thread = threading.Thread

    def no_thread(*a: Any, **k: Any) -> Any:
        raise RuntimeError("can't start new thread")

    class ReleaseThread(real_thread):  # type: ignore[misc, valid-type]
        def start(self) -> None:
            if self.name == "mediaidx-release":
                raise RuntimeError("can't start new thread")
            super().start()

    monkeypatch.setattr(server_mod, "LocalSource", no_thread)
    monkeypatch.setattr(threading, "Thread", ReleaseThread)
    c = connect(server.bound, "blender")
    try:
        (t,) = fetch_all(c, tmp_path, [src], timeout=20)
        assert t.error is not None and "new thread" in t.error.message, t.error
        fds = lambda: [fd for fd in os.listdir("/proc/self/fd")  # noqa: E731
                       if os.path.realpath(f"/proc/self/fd/{fd}") == str(src)]
        deadline = time.monotonic() + 10
        while fds() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not fds(), "the bridge still holds the file open"
    finally:
        c.stop()


def test_a_link_from_one_root_into_another_reached_through_a_link_is_served(tmp_path: Path) -> None:
    """Roots A and B, B itself a link (/data/B -> /mnt/b): a link in A to a file of B resolves to /mnt/b/...,
    which names no root by its text; it was refused after contained() stopped resolving every root."""
    from bridge.service.security import Forbidden, contained

    real_b = tmp_path / "mnt" / "b"
    real_b.mkdir(parents=True)
    (real_b / "f.mov").write_bytes(b"x")
    data = tmp_path / "data"
    data.mkdir()
    (data / "B").symlink_to(real_b)
    a = tmp_path / "A"
    a.mkdir()
    (a / "to_b.mov").symlink_to(data / "B" / "f.mov")
    (a / "out.mov").symlink_to(tmp_path / "elsewhere.mov")
    (tmp_path / "elsewhere.mov").write_bytes(b"y")
    roots = [str(a), str(data / "B")]
    assert contained(str(a / "to_b.mov"), roots) == os.fsencode(real_b / "f.mov")
    with pytest.raises(Forbidden):
        contained(str(a / "out.mov"), roots)  # still: out of every root


def test_a_waiting_fetch_keeps_only_the_fields_a_fetch_reads() -> None:
    """Fetches past the 32 open wait on the bridge with their request: a client sending 2000 of them with 900 KB
    of other keys each took the bridge from 39 MiB to 1.8 GiB. Now only the checked fields are kept."""
    junk = {"path": "/lib/a.mov", "offset": 5, "junk": "x" * 900_000, "expect": {"size": 1, "mtime_ns": 2, "pad": "y"},
            "channels": ["unix", "tcp", "z" * 1000, 3]}
    kept = server_mod._fetch_fields(junk)
    assert kept == {"path": "/lib/a.mov", "offset": 5, "expect": {"size": 1, "mtime_ns": 2}, "channels": ["unix", "tcp"]}
    with pytest.raises(P.ProtocolError, match="longer than 4096"):
        server_mod._fetch_fields({"path": "/" + "a" * 5000})
    with pytest.raises(P.ProtocolError, match="wrong type"):
        server_mod._fetch_fields({"asset": "seven"})
