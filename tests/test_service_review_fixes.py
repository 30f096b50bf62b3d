"""Review fixes for the bridge's hung-storage work (05923cf): a resumed fetch hashing a big part is not swept as
idle, and a sweep tells the client; file operations stuck on one storage hold up neither the other storages nor
the process's exit; the "client has the whole file" hash is bounded by the size and maps a read error to
`unavailable`; read-ahead stays within the client's credit and fetches per connection are capped; the loop
answers exactly once. Real bridge on loopback, real clients and sockets; hangs and failures are injected at the
one call they concern, for one file."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from inprocess_bridge import Hang, bridge_in_process, connect, fds_on, wait_for

from blender_mediaidx.core import protocol as P
from bridge import MediaIndexer
from bridge.service import datachannel as datachannel_mod
from bridge.service import server as server_mod
from bridge.service import streaming as streaming_mod
from bridge.service.server import BridgeServer

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads open files from /proc")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """(NAS root, healthy root, catalog, cache): two catalog roots, so one can hang while the other works."""
    nas, local = tmp_path / "nas", tmp_path / "local"
    nas.mkdir()
    local.mkdir()
    (nas / "stuck.mov").write_bytes(os.urandom(4 << 20))
    (nas / "other.mov").write_bytes(os.urandom(300_000))
    for i in range(5):
        (nas / f"hung{i}.mov").write_bytes(os.urandom(1000))
    (local / "fine.mov").write_bytes(os.urandom(300_000))
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(nas, probe=False)
        ix.scan(local, probe=False)
    return nas, local, cat, cache


@pytest.fixture
def bridge(library) -> Iterator[BridgeServer]:
    _nas, _local, cat, cache = library
    with bridge_in_process(cat, cache) as server:
        yield server


def on_file(path: Path) -> Any:
    """A predicate for an fd-taking call: the fd is open on ``path``."""
    ino = path.stat().st_ino

    def check(fd: int, *rest: Any) -> bool:
        try:
            return os.fstat(fd).st_ino == ino
        except OSError:
            return False

    return check


class RawPeer:
    """A bare DEALER: sends what it likes, never credits, and sees every message (replies and events)."""

    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 1)  # chunks stay queued on the bridge's side, as a peer that stopped
        self.sock.connect(endpoint)
        self.seen: list[dict[str, Any]] = []

    def send(self, op: str, args: dict[str, Any]) -> Any:
        msg = P.request(op, args, deadline_ms=None)
        self.sock.send(P.encode(msg))
        return msg["id"]

    def pump(self, until: Any, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if until():
                return True
            if self.sock.poll(50):
                frames = self.sock.recv_multipart()
                self.seen.append(P.decode(frames[0]))
        return until()

    def replies(self, rid: Any) -> list[dict[str, Any]]:
        return [m for m in self.seen if m.get("id") == rid and "event" not in m]

    def close(self) -> None:
        self.sock.close(0)


def resume_part(dest: Path, src: Path, data: bytes) -> None:
    """The part and metadata a client leaves behind, holding ``data`` of ``src``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    st = src.stat()
    Path(str(dest) + ".part").write_bytes(data)
    Path(str(dest) + ".part.json").write_text(json.dumps({"source": {"path": str(src)}, "size": st.st_size,
                                                          "mtime_ns": st.st_mtime_ns}))


# -- 1: the idle sweep ------------------------------------------------------------------------------------------------
def test_a_resume_whose_part_takes_longer_than_the_idle_sweep_to_hash_completes(
        library, bridge: BridgeServer, tmp_path: Path, monkeypatch) -> None:
    """The part a resumed client has is hashed on the source's thread after the transfer is registered; a hash
    longer than TRANSFER_IDLE_S (120 s: a 100 GB part on a NAS) got the transfer swept with nothing said, and
    the client, which sets no timeout before a resume's first chunk, waited forever. A source whose reads go on
    counts as active (each read from when it started: one that hangs for good is swept, test_service_round3)."""
    nas, _local, _cat, _cache = library
    src = nas / "stuck.mov"
    data = src.read_bytes()
    monkeypatch.setattr(server_mod, "TRANSFER_IDLE_S", 2.0)
    monkeypatch.setattr(streaming_mod, "PREFIX_READ", 256 << 10)  # the part is hashed in 12 reads
    mine = on_file(src)
    real = os.preadv

    def slow(fd: int, bufs: Any, offset: int, *rest: Any) -> int:  # the reads of the part: slow storage
        if offset < (3 << 20) and mine(fd):
            time.sleep(0.7)  # 12 x 0.7 s: past the idle limit and the sweep that runs every 5 s
        return real(fd, bufs, offset, *rest)

    monkeypatch.setattr(os, "preadv", slow)
    dest = tmp_path / "dl" / "stuck.mov"
    resume_part(dest, src, data[:3 << 20])
    with connect(bridge.bound, "blender-a", data_channel="frames") as a:
        t = a.fetch(dest, path=str(src), chunk_size=256 << 10)
        assert a.wait(lambda: t.finished, 40), "the resumed fetch never ended"
        assert t.done, t.error
        assert t.resumed_from == 3 << 20
    assert dest.read_bytes() == data


def test_a_transfer_the_idle_sweep_drops_is_reported_to_its_client(library, bridge: BridgeServer,
                                                                    monkeypatch) -> None:
    """The sweep closed idle transfers without a word; a client that waits (a resume before its first chunk
    has no timeout) never learned. It now gets `fetch.error` `unavailable` and can resume."""
    nas, _local, _cat, _cache = library
    monkeypatch.setattr(server_mod, "TRANSFER_IDLE_S", 1.0)
    peer = RawPeer(bridge.bound)
    try:
        rid = peer.send("fetch", {"path": str(nas / "stuck.mov"), "chunk": 64 << 10, "window": 1})
        assert peer.pump(lambda: peer.replies(rid), 10)
        reply = peer.replies(rid)[0]
        assert reply["ok"], reply
        tid = reply["result"]["transfer"]

        def swept() -> list[dict[str, Any]]:
            return [m for m in peer.seen if m.get("event") == "fetch.error" and m["data"]["transfer"] == tid]

        assert peer.pump(swept, 20), "the bridge dropped the transfer without telling the client"
        assert swept()[0]["data"]["code"] == P.UNAVAILABLE
        assert wait_for(lambda: tid not in bridge.transfers)
    finally:
        peer.close()


# -- 2: one storage that hangs --------------------------------------------------------------------------------------
def test_fetches_stuck_on_one_storage_hold_up_neither_other_storages_nor_scans(
        library, bridge: BridgeServer, tmp_path: Path, monkeypatch) -> None:
    """Four fetches stuck on a hung mount took every thread of the bridge's file pool: every local fetch and
    scan root check waited with them. Now each storage (catalog root) has its own cap: the other root's fetch
    and scan go on, and another call to the stuck storage answers `unavailable` instead of queueing forever."""
    nas, local, _cat, _cache = library
    hang = Hang(server_mod.contained, lambda path, roots: os.fsdecode(path).startswith(str(nas) + os.sep))
    monkeypatch.setattr(server_mod, "contained", hang)
    with connect(bridge.bound, "blender-a", data_channel="frames") as a:
        stuck = [a.fetch(tmp_path / "dl" / f"h{i}.mov", path=str(nas / f"hung{i}.mov")) for i in range(4)]
        assert hang.wait_entered(4)
        try:
            fine = a.fetch(tmp_path / "dl" / "fine.mov", path=str(local / "fine.mov"))
            assert a.wait(lambda: fine.finished, 15), "a fetch from a healthy root waited for the hung one"
            assert fine.done, fine.error
            replies: list[Any] = []
            a.request("scan", {"roots": [str(local)], "probe": False, "dry_run": True}, on_reply=replies.append,
                      on_error=replies.append, timeout_s=30)
            assert a.wait(lambda: replies, 15), "a scan of a healthy root waited for the hung one"
            assert isinstance(replies[0], dict) and "job" in replies[0], replies
            more = a.fetch(tmp_path / "dl" / "h4.mov", path=str(nas / "hung4.mov"))
            assert a.wait(lambda: more.finished, 60), "a fetch from the hung storage queued forever"
            assert more.error is not None and more.error.code == P.UNAVAILABLE, more.error
            assert "not answering" in more.error.message
            assert not any(t.finished for t in stuck)
        finally:
            hang.release()
        assert all(a.wait(lambda t=t: t.finished, 20) and t.done for t in stuck)  # the mount is back
        again = a.fetch(tmp_path / "dl2" / "h4.mov", path=str(nas / "hung4.mov"))
        assert a.wait(lambda: again.finished, 20) and again.done, again.error


# -- 3: the client already has the whole file -------------------------------------------------------------------------
def test_a_part_holding_the_whole_file_verifies_though_the_file_grew_after_the_stat(
        library, bridge: BridgeServer, tmp_path: Path, monkeypatch) -> None:
    """The bridge hashed such a part to the end of the file instead of to its size: a render appending to the
    file after the stat made a correct part fail verification (and be thrown away)."""
    nas, _local, _cat, _cache = library
    src = nas / "stuck.mov"
    data = src.read_bytes()
    mine = on_file(src)
    real = os.preadv
    grown: list[int] = []

    def grow(fd: int, bufs: Any, offset: int, *rest: Any) -> int:
        if not grown and mine(fd):  # a render appends right after the bridge's stat
            grown.append(1)
            with open(src, "ab") as fh:
                fh.write(b"x" * 1000)
        return real(fd, bufs, offset, *rest)

    monkeypatch.setattr(os, "preadv", grow)
    dest = tmp_path / "dl" / "stuck.mov"
    resume_part(dest, src, data)
    with connect(bridge.bound, "blender-a", data_channel="frames") as a:
        t = a.fetch(dest, path=str(src))
        assert a.wait(lambda: t.finished, 20)
        assert t.done, t.error
    assert grown and dest.read_bytes() == data


def test_a_read_error_hashing_a_whole_part_is_unavailable_not_internal(
        library, bridge: BridgeServer, tmp_path: Path, monkeypatch) -> None:
    """An EIO while hashing a part that holds the whole file answered `internal` (a bug, with a traceback in
    the log); a storage error is `unavailable`, as everywhere else, the part stays and nothing is left open."""
    nas, _local, _cat, _cache = library
    src = nas / "stuck.mov"
    data = src.read_bytes()
    mine = on_file(src)
    real = os.preadv

    def eio(fd: int, bufs: Any, offset: int, *rest: Any) -> int:
        if mine(fd):
            raise OSError(errno.EIO, "Input/output error")
        return real(fd, bufs, offset, *rest)

    monkeypatch.setattr(os, "preadv", eio)
    dest = tmp_path / "dl" / "stuck.mov"
    resume_part(dest, src, data)
    with connect(bridge.bound, "blender-a", data_channel="frames") as a:
        t = a.fetch(dest, path=str(src))
        assert a.wait(lambda: t.finished, 20)
        assert t.error is not None and t.error.code == P.UNAVAILABLE, t.error
    assert Path(str(dest) + ".part").read_bytes() == data
    assert wait_for(lambda: not fds_on(src))


# -- 4: memory and threads per client -------------------------------------------------------------------------------
def test_read_ahead_stays_within_the_credit_of_a_client_that_does_not_read(library, bridge: BridgeServer) -> None:
    """Each source read up to 8 MiB ahead whatever the client's credit, outside PEER_BUFFER_BYTES: fetches that
    are never credited held their chunk in the bridge's buffer and two more in their sources. Now a source
    reads no more than the client may be sent (its credit): one chunk buffer per stalled transfer."""
    nas, _local, _cat, _cache = library
    big = nas / "big.mov"
    big.write_bytes(os.urandom(32 << 20))
    chunk, n = 4 << 20, 8
    tracemalloc.start()
    peer = RawPeer(bridge.bound)
    try:
        base = tracemalloc.get_traced_memory()[0]
        rids = [peer.send("fetch", {"path": str(big), "chunk": chunk, "window": 1}) for _ in range(n)]
        assert peer.pump(lambda: all(peer.replies(r) for r in rids), 20)
        assert all(peer.replies(r)[0]["ok"] for r in rids)
        time.sleep(2)  # what the sources would read ahead, they have read by now
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
        peer.close()
    assert held < n * chunk * 1.5, f"{held >> 20} MiB held for {n} stalled transfers of one {chunk >> 20} MiB chunk"


def test_a_client_cannot_open_fetches_without_bound(library, bridge: BridgeServer) -> None:
    """Every fetch costs the bridge a reader thread, an open file and its buffers: one connection opening 100
    fetches it never reads took 107 threads. At most MAX_FETCHES_PER_PEER are open at once; the rest wait on
    the bridge (no thread, no file, no buffer) and start as earlier ones finish (round 3: they were refused,
    which failed a push of 40 shots)."""
    nas, _local, _cat, _cache = library
    cap = getattr(server_mod, "MAX_FETCHES_PER_PEER", 32)  # the documented limit
    peer = RawPeer(bridge.bound)
    try:
        rids = [peer.send("fetch", {"path": str(nas / "stuck.mov"), "chunk": 64 << 10, "window": 1})
                for _ in range(cap + 8)]
        assert peer.pump(lambda: all(peer.replies(r) for r in rids[:cap]), 30)
        peer.pump(lambda: False, 1.0)  # time for a wrong answer to the ones beyond the cap
        replies = [peer.replies(r)[0] for r in rids[:cap]]
        assert all(r["ok"] for r in replies), replies
        assert not any(peer.replies(r) for r in rids[cap:]), "fetches beyond the cap were answered"
        readers = [th for th in threading.enumerate() if th.name == "mediaidx-local-fetch"]
        assert len(readers) <= cap
        tid = replies[0]["result"]["transfer"]
        peer.send("abort", {"transfer": tid})  # one finished or aborted makes room for the next waiting
        assert wait_for(lambda: tid not in bridge.transfers)
        assert peer.pump(lambda: peer.replies(rids[cap]), 10)
        assert peer.replies(rids[cap])[0]["ok"], peer.replies(rids[cap])
        assert not any(peer.replies(r) for r in rids[cap + 1:])
        assert len([th for th in threading.enumerate() if th.name == "mediaidx-local-fetch"]) <= cap
    finally:
        peer.close()


# -- 5: exit -----------------------------------------------------------------------------------------------------------
def test_a_file_operation_stuck_on_a_dead_mount_does_not_hold_the_process_exit(tmp_path: Path) -> None:
    """The bridge's file pool threads were joined at interpreter exit: a process whose bridge had stopped
    still waited for a call stuck on a dead mount (`mediaidx serve` hung after Ctrl-C). They are daemons now."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, threading, time
        from pathlib import Path
        sys.path.insert(0, {str(REPO)!r})
        from blender_mediaidx.core.client import BridgeClient
        from bridge import MediaIndexer
        from bridge.service import server as server_mod
        from bridge.service.server import BridgeServer
        tmp = Path({str(tmp_path)!r}); nas = tmp / "nas"; nas.mkdir()
        (nas / "stuck.mov").write_bytes(b"x" * 1000)
        with MediaIndexer(tmp / "cat.sqlite", cache_dir=tmp / "cache") as ix:
            ix.scan(nas, probe=False)
        real = server_mod.contained
        def dead_mount(path, roots):
            time.sleep(120)
            return real(path, roots)
        server_mod.contained = dead_mount
        srv = BridgeServer(tmp / "cat.sqlite", bind="tcp://127.0.0.1:0", cache_dir=tmp / "cache")
        th = threading.Thread(target=srv.run, daemon=True); th.start(); srv.wait_ready()
        c = BridgeClient(srv.bound, name="a", heartbeat_s=0.2, dead_after_s=2.0, data_channel="frames").start()
        assert c.wait(lambda: c.state == "connected", 10)
        c.fetch(tmp / "dl" / "s.mov", path=str(nas / "stuck.mov")); time.sleep(1)
        c.stop(); srv.stop(); th.join(10)
        print("stopped", flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        out, _ = proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the process did not exit while a file operation hung")
    assert proc.returncode == 0 and "stopped" in out, out


# -- 6: the loop answers once and never closes a file itself --------------------------------------------------------
def test_an_expired_ticket_closes_its_file_off_the_data_channel_thread(
        library, bridge: BridgeServer, tmp_path: Path, monkeypatch) -> None:
    """A ticket presented after it expired had its file closed on the listener's one thread, which reads every
    ticket: a close hanging on a dead mount stopped every same-host fetch."""
    nas, _local, _cat, _cache = library
    stuck = nas / "stuck.mov"
    monkeypatch.setattr(datachannel_mod, "TICKET_TTL_S", 0.5)
    monkeypatch.setattr(bridge.data, "sweep", lambda: None)  # the expiry is seen by the listener, not a sweep
    hang = Hang(os.close, on_file(stuck))
    monkeypatch.setattr(os, "close", hang)
    peer = RawPeer(bridge.bound)
    try:
        rid = peer.send("fetch", {"path": str(stuck), "channels": ["unix"]})
        assert peer.pump(lambda: peer.replies(rid), 10)
        offer = peer.replies(rid)[0]["result"]["channel"]
        time.sleep(1)  # the ticket expires
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(offer["address"])
        conn.sendall(offer["ticket"])
        try:
            assert hang.wait_entered(1), "the file was never closed"
            with connect(bridge.bound, "blender-b", data_channel="unix") as b:
                t = b.fetch(tmp_path / "b" / "other.mov", path=str(nas / "other.mov"))
                assert b.wait(lambda: t.finished, 15), "the data channel stopped with the hung close"
                assert t.done and t.channel == "unix", t.error
        finally:
            hang.release()
            conn.close()
    finally:
        peer.close()


@pytest.mark.parametrize("channel", ["frames", "auto"])
def test_a_fetch_that_fails_while_it_is_registered_is_answered_and_closes_its_file(
        library, bridge: BridgeServer, tmp_path: Path, monkeypatch, channel: str) -> None:
    """The transfer was marked registered before its source (or data-channel offer) was built: a failure there
    (no thread to be had, a listener that cannot open) sent no reply, so the client waited, and leaked the fd."""
    nas, _local, _cat, _cache = library
    src = nas / "stuck.mov"

    def no_thread(*a: Any, **k: Any) -> Any:
        raise RuntimeError("can't start new thread")

    if channel == "frames":
        monkeypatch.setattr(server_mod, "LocalSource", no_thread)
    else:
        monkeypatch.setattr(bridge.data, "offer", no_thread)
    with connect(bridge.bound, "blender-a", data_channel=channel) as a:
        t = a.fetch(tmp_path / "a" / "stuck.mov", path=str(src))
        assert a.wait(lambda: t.finished, 15), "the fetch was never answered"
        assert t.error is not None and t.error.code == P.INTERNAL and "new thread" in t.error.message, t.error
        assert "time" in a.call("ping", timeout_s=5)
    assert wait_for(lambda: not fds_on(src)), "the bridge still holds the file open"


def test_a_scan_whose_start_outlasts_the_check_thread_wait_is_answered_once(
        library, bridge: BridgeServer, monkeypatch) -> None:
    """The scan's check thread stopped waiting for the loop after its timeout and answered an error while the
    loop went on to start the scan and answer ok: two replies to one request, and a scan its client was told
    had failed."""
    _nas, local, _cat, _cache = library
    real_call = bridge.call_in_loop
    monkeypatch.setattr(bridge, "call_in_loop", lambda fn, timeout=10: real_call(fn, timeout=0.5))

    def busy() -> None:  # the loop is slow to start this scan (it runs on the loop)
        time.sleep(1.5)
        return None

    bridge.external_scan = busy
    peer = RawPeer(bridge.bound)
    try:
        rid = peer.send("scan", {"roots": [str(local)], "probe": False, "dry_run": True})
        assert peer.pump(lambda: peer.replies(rid), 10)
        peer.pump(lambda: False, 3)  # anything else that comes for it
        replies = peer.replies(rid)
        assert len(replies) == 1, replies
        assert replies[0]["ok"] and "job" in replies[0]["result"], replies
    finally:
        peer.close()


def test_a_remote_resume_whose_part_is_slow_to_hash_is_not_swept(tmp_path: Path, monkeypatch) -> None:
    """The same for a file on a remote root (S3 here): RemoteSource hashes the part after the reply, and a
    storage slower than the idle limit got the transfer dropped without a word."""
    pytest.importorskip("moto")
    sys.path.insert(0, str(REPO / "tests" / "remote"))
    try:
        from remote_servers import S3Remote
    finally:
        sys.path.remove(str(REPO / "tests" / "remote"))
    from bridge.service import streaming

    remote = S3Remote(tmp_path / "server")
    try:
        for k, v in remote.env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(tmp_path / "no-storage.toml"))
        data = os.urandom(4 << 20)
        remote.put("plates/a.mov", data)
        cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
        with MediaIndexer(cat, cache_dir=cache) as ix:
            ix.scan(remote.url, probe=False)
        url = remote.url + "/plates/a.mov"
        st = streaming.storage_for_root(remote.url).stat(b"plates/a.mov")
        dest = tmp_path / "dl" / "a.mov"
        dest.parent.mkdir()
        Path(str(dest) + ".part").write_bytes(data[:3 << 20])
        Path(str(dest) + ".part.json").write_text(json.dumps({"source": {"path": url}, "size": st.size,
                                                              "mtime_ns": st.mtime_ns}))
        # each read counts from when it started (round 3: a read that hangs for good is swept): 12 reads of the
        # part, each under the idle limit, together past it and the sweep that runs every 5 s
        monkeypatch.setattr(server_mod, "TRANSFER_IDLE_S", 2.0)
        monkeypatch.setattr(streaming, "PREFIX_READ", 256 << 10)
        real_read = streaming.RemoteSource._read
        slowed: list[int] = []

        def slow(self: Any, fh: Any, pos: int, n: int) -> Any:
            if pos < (3 << 20):  # the reads of the part: a slow storage
                slowed.append(1)
                time.sleep(0.7)
            return real_read(self, fh, pos, n)

        monkeypatch.setattr(streaming.RemoteSource, "_read", slow)
        server = BridgeServer(cat, bind="tcp://127.0.0.1:0", cache_dir=cache)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        server.wait_ready()
        try:
            with connect(server.bound, "blender-a", data_channel="frames") as a:
                t = a.fetch(dest, path=url, chunk_size=256 << 10)
                assert a.wait(lambda: t.finished, 40), "the resumed fetch never ended"
                assert t.done, t.error
                assert t.resumed_from == 3 << 20 and slowed
            assert dest.read_bytes() == data
        finally:
            server.stop()
            thread.join(10)
    finally:
        remote.stop()
