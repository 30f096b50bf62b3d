"""Adversarial checks of the bridge service and its client over real loopback sockets (docs/protocol.md):
what a bad peer, a dying bridge or a caller's mistake does to the other side."""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from blender_mediaidx.core import client as client_mod
from blender_mediaidx.core import protocol as P
from blender_mediaidx.core.client import BridgeClient
from bridge import MediaIndexer, synth


@pytest.fixture
def small_library(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(media root, catalog, cache): one clip and a 16 MiB file to fetch."""
    root = tmp_path / "media"
    root.mkdir()
    synth.make_video(root / "sh010_plate.mov", frames=6, width=32, height=24)
    (root / "big.bin.mov").write_bytes(os.urandom(16 << 20))
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(root)
    return root, cat, cache


def connect(endpoint: str, name: str = "auditor", **kw: Any) -> BridgeClient:
    c = BridgeClient(endpoint, name=name, heartbeat_s=0.2, dead_after_s=1.0, **kw).start()
    assert c.wait(lambda: c.state == "connected", 10), c.last_error
    return c


def raw_call(endpoint: str, msg: dict[str, Any], timeout_ms: int = 5000) -> dict[str, Any]:
    """One request from a bare DEALER socket (what any program on this host can send)."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send(P.encode(msg))
        assert sock.poll(timeout_ms), f"no answer to {msg!r}"
        return P.decode(sock.recv_multipart()[0])
    finally:
        sock.close(0)


class FakeBridge:
    """A ROUTER on loopback that answers hello/ping like the bridge and hands every other request to
    ``handle(send, msg)``: a bridge that misbehaves in exactly one way, over a real socket."""

    def __init__(self, handle: Callable[[Callable[..., None], dict[str, Any]], None]) -> None:
        self.handle = handle
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.answer_pings = True
        self.notes: list[dict[str, Any]] = []  # credit and abort messages received (they get no reply)
        self._stop = threading.Event()
        self._outbox: queue.Queue[list[bytes]] = queue.Queue()  # sends from other threads: the socket is this one's
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            while not self._outbox.empty():
                self.sock.send_multipart(self._outbox.get_nowait())
            if not self.sock.poll(20):
                continue
            identity, body, *_ = self.sock.recv_multipart()
            msg = P.decode(body)

            def send(m: dict[str, Any], *data: bytes, _id: bytes = identity) -> None:
                frames = [_id, P.encode(m), *data]
                if threading.current_thread() is self._thread:
                    self.sock.send_multipart(frames)
                else:  # a ZeroMQ socket belongs to one thread
                    self._outbox.put(frames)

            if msg.get("op") in ("hello", "ping"):
                if self.answer_pings:
                    send(P.ok(msg["id"], {"session": "x", "protocol": 1, "roots": [], "local": True}))
            elif msg.get("op") in ("credit", "abort"):
                self.notes.append(msg)
            else:
                self.handle(send, msg)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close(0)


# -- the bridge -------------------------------------------------------------------------------------------------

def test_out_of_range_integers_get_bad_request_not_internal(small_library, bridge_process) -> None:
    """msgpack carries integers up to 2**64-1; SQLite and the OS take 64-bit signed ones. Such an argument is
    the caller's mistake: bad_request naming it, not an `internal` error with a traceback in the log."""
    _root, cat, cache = small_library
    bridge = bridge_process(cat, cache)
    for op, args, name in (("show", {"asset": 2**63}, "asset"), ("thumbnail", {"asset": 2**64 - 1}, "asset"),
                           ("fetch", {"asset": 1, "offset": 2**63}, "offset"), ("cancel", {"job": 2**63 + 5}, "job"),
                           ("search", {"query": "plate", "offset": 2**64 - 1}, "offset")):
        reply = raw_call(bridge.endpoint, {"v": 1, "id": 7, "op": op, "args": args})
        assert reply["id"] == 7 and reply["ok"] is False, (op, reply)
        assert reply["error"]["code"] == P.BAD_REQUEST and name in reply["error"]["message"], (op, reply)
    with connect(bridge.endpoint) as c:
        assert c.call("search", {"query": "plate"})["total"] == 1
    bridge.stop()
    assert "Traceback" not in bridge.proc.stderr.read()


# -- the client -------------------------------------------------------------------------------------------------

def test_an_unsendable_argument_fails_in_the_caller_and_the_client_lives_on(small_library, bridge_process) -> None:
    """A Path or a 65-bit integer in the arguments is a script's mistake: ValueError right there, in the
    caller's thread; before, the client's IO thread died on it and every later call timed out."""
    _root, cat, cache = small_library
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint) as c:
        with pytest.raises(ValueError, match="cannot send"):
            c.request("probe", {"path": Path("/x")})
        with pytest.raises(ValueError, match="cannot send"):
            c.call("show", {"asset": 2**64})
        with pytest.raises(ValueError, match="cannot send"):
            c.notify("abort", {"transfer": {1, 2}})
        with pytest.raises(ValueError, match="cannot send"):
            c.fetch(Path(_root) / "never", path=Path("/x"))  # type: ignore[arg-type]
        time.sleep(0.5)
        assert c.state == "connected"
        assert c.call("search", {"query": "plate"}, timeout_s=5)["total"] == 1


def test_a_reply_larger_than_the_request_limit_reaches_the_client(tmp_path: Path, bridge_process) -> None:
    """A 1000-result search on a NAS with long names is more than 1 MiB of msgpack: the 1 MiB limit guards the
    bridge against requests, the client must still take the bridge's answer (it dropped it and timed out)."""
    root = tmp_path / "m" / ("Harbour_2024_Day03_CameraA_" * 4)
    root.mkdir(parents=True)
    for i in range(1000):
        (root / (f"A003C{i:04d}_240312_R1AB_harbour_wide_establishing_" + "x" * 130 + ".mov")).write_bytes(b"")
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(tmp_path / "m", probe=False)
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint) as c:
        res = c.call("search", {"query": "", "filters": {"status": None}, "limit": 1000, "count": False},
                     timeout_s=20)
        assert len(P.encode(res)) > P.MAX_CONTROL_BYTES
        assert len(res["results"]) == 1000


def test_a_fetch_fails_instead_of_hanging_when_the_bridge_dies(small_library, bridge_process, tmp_path: Path) -> None:
    """The bridge killed mid-fetch (frames): the transfer ends with `unavailable` once the heartbeat notices,
    keeping the part for a resume; before, it waited forever and `finished` never became true."""
    root, cat, cache = small_library
    bridge = bridge_process(cat, cache)
    dest = tmp_path / "dl" / "big.mov"
    with connect(bridge.endpoint, data_channel="frames") as c:
        errors: list[P.RemoteError] = []
        t = c.fetch(dest, path=str(root / "big.bin.mov"), chunk_size=64 << 10, window=1,
                    on_error=lambda tr, e: errors.append(e))
        assert c.wait(lambda: t.received >= 256 << 10, 20)
        bridge.proc.kill()
        bridge.proc.wait()
        assert c.wait(lambda: t.finished, 10), "the fetch never ended"
        assert not t.done and t.error is not None and t.error.code == P.UNAVAILABLE, t.error
        assert errors and "resume" in errors[0].message
    part = dest.with_name(dest.name + ".part")
    assert part.exists() and 0 < part.stat().st_size < (16 << 20) and not dest.exists()


def test_a_fetch_the_bridge_stops_feeding_times_out(tmp_path: Path, monkeypatch) -> None:
    """A bridge that still answers pings but stops sending a transfer's chunks: the fetch fails after the
    data timeout (and tells the bridge to abort) instead of waiting forever."""
    monkeypatch.setattr(client_mod, "DATA_TIMEOUT_S", 1.0)

    def handle(send: Callable[..., None], msg: dict[str, Any]) -> None:
        if msg["op"] == "fetch":
            send(P.ok(msg["id"], {"transfer": 5, "size": 100, "mtime_ns": 1, "offset": 0, "hash": "xxh3_128",
                                  "chunk": 10, "window": 1}))
            send(P.event("fetch.chunk", {"transfer": 5, "offset": 0}), b"0123456789")  # then silence

    fake = FakeBridge(handle)
    try:
        with connect(fake.endpoint, data_channel="frames") as c:
            t = c.fetch(tmp_path / "f.bin", path="/x")
            assert c.wait(lambda: t.finished, 10), "the fetch never ended"
            assert t.error is not None and t.error.code == P.UNAVAILABLE and t.received == 10, t.error
            assert t.part.read_bytes() == b"0123456789"
            assert c.state == "connected"
            assert c.wait(lambda: any(m["op"] == "abort" and m["args"] == {"transfer": 5} for m in fake.notes), 5)
    finally:
        fake.close()


def test_malformed_messages_from_the_bridge_do_not_kill_the_client(tmp_path: Path) -> None:
    """Whatever the other end sends, the client's IO thread lives on: a fetch given a nonsense reply fails
    with a clear error, and the next request is answered."""
    def handle(send: Callable[..., None], msg: dict[str, Any]) -> None:
        if msg["op"] == "fetch":
            send({"v": 1, "id": [msg["id"]], "ok": True})                      # an unhashable id
            send(P.event("fetch.chunk", [1, 2]), b"x")                        # data not a map
            send(P.event("fetch.done", {"transfer": [5]}))                    # an unhashable transfer id
            send(P.ok(msg["id"], {"transfer": "five", "size": None}))        # a broken fetch reply
        else:
            send(P.ok(msg["id"], {"echo": msg["op"]}))

    fake = FakeBridge(handle)
    try:
        with connect(fake.endpoint, data_channel="frames") as c:
            t = c.fetch(tmp_path / "f.bin", path="/x")
            assert c.wait(lambda: t.finished, 5), "the fetch never ended"
            assert t.error is not None and "malformed" in t.error.message
            assert c.call("stats", timeout_s=5) == {"echo": "stats"}
            assert c._thread is not None and c._thread.is_alive()
    finally:
        fake.close()


def test_a_fetch_that_cannot_write_its_part_fails_and_the_client_lives_on(small_library, bridge_process,
                                                                          tmp_path: Path) -> None:
    """The destination cannot be written (here the part's record is a folder; a full disk or a read-only share
    alike): that fetch fails saying so, the client keeps working; before, its IO thread died."""
    root, cat, cache = small_library
    bridge = bridge_process(cat, cache)
    dest = tmp_path / "dl" / "ref.mov"
    dest.parent.mkdir()
    dest.with_name(dest.name + ".part.json").mkdir()
    with connect(bridge.endpoint, data_channel="frames") as c:
        t = c.fetch(dest, path=str(root / "sh010_plate.mov"))
        assert c.wait(lambda: t.finished, 10), "the fetch never ended"
        assert t.error is not None and "cannot write" in t.error.message, t.error
        assert c.call("search", {"query": "plate"}, timeout_s=5)["total"] == 1
        ok = c.fetch(tmp_path / "dl" / "again.mov", path=str(root / "sh010_plate.mov"))
        assert c.wait(lambda: ok.finished, 10) and ok.done, ok.error


def test_a_resumed_data_channel_fetch_waits_while_the_bridge_hashes_the_part(tmp_path: Path, monkeypatch) -> None:
    """Resuming a plate on a remote root, the bridge first reads and hashes the part the client already has, so
    the data channel's first byte can take minutes; the client waited DATA_TIMEOUT_S and failed every resume of
    a big enough file. The timeout counts again once bytes flow."""
    import socket

    import xxhash

    monkeypatch.setattr(client_mod, "DATA_TIMEOUT_S", 1.0)
    whole = os.urandom(1 << 20)
    half = len(whole) // 2
    dest = tmp_path / "plate.mov"
    Path(f"{dest}.part").write_bytes(whole[:half])
    Path(f"{dest}.part.json").write_text(json.dumps({"source": {"path": "/r/plate.mov"}, "size": len(whole),
                                                     "mtime_ns": 7}))
    listener = socket.create_server(("127.0.0.1", 0))
    ticket = os.urandom(32)
    offsets: list[int] = []

    def handle(send: Callable[..., None], msg: dict[str, Any]) -> None:
        if msg["op"] != "fetch":
            return
        offsets.append(msg["args"]["offset"])
        send(P.ok(msg["id"], {"transfer": 9, "size": len(whole), "mtime_ns": 7, "offset": half, "hash": "xxh3_128",
                              "chunk": 1 << 20, "window": 8,
                              "channel": {"kind": "tcp", "address": list(listener.getsockname()), "ticket": ticket}}))

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                assert conn.recv(32) == ticket
                time.sleep(2.5)  # hashing the client's half, longer than DATA_TIMEOUT_S
                conn.sendall(whole[half:])
            send(P.event("fetch.done", {"transfer": 9, "size": len(whole), "hash": xxhash.xxh3_128_hexdigest(whole)}))

        threading.Thread(target=serve, daemon=True).start()

    fake = FakeBridge(handle)
    try:
        with connect(fake.endpoint, data_channel="tcp") as c:
            t = c.fetch(dest, path="/r/plate.mov")
            assert c.wait(lambda: t.finished, 15), "the fetch never ended"
            assert t.done and t.channel == "tcp" and t.resumed_from == half, t.error
        assert offsets == [half] and dest.read_bytes() == whole
    finally:
        fake.close()
        listener.close()


def test_search_filters_of_the_wrong_type_get_bad_request(small_library, bridge_process) -> None:
    """A filter of the wrong type (a script's `"has_audio": "yes"`, a single tag as a number, a list for a root)
    is named in a bad_request; before, some were internal errors with a traceback in the log and others
    silently matched nothing."""
    _root, cat, cache = small_library
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint) as c:
        for name, value in (("has_audio", "yes"), ("min_duration", "5"), ("tags", 5), ("tags", ["hero", 3]),
                            ("root", ["/x"]), ("kind", ["video"]), ("min_rating", True), ("date_from", 2024)):
            with pytest.raises(P.RemoteError) as err:
                c.call("search", {"query": "plate", "filters": {name: value}}, timeout_s=5)
            assert err.value.code == P.BAD_REQUEST and name in err.value.message, (name, err.value)
        # the right types still work
        found = c.call("search", {"query": "plate", "filters": {"has_audio": False, "min_duration": 0.1,
                                                                "tags": [], "kind": "video"}})
        assert [a["name"] for a in found["results"]] == ["sh010_plate.mov"]
    bridge.stop()
    assert "Traceback" not in bridge.proc.stderr.read()


def test_a_data_channel_that_cannot_listen_falls_back_instead_of_failing_every_fetch(small_library, tmp_path: Path,
                                                                                   monkeypatch) -> None:
    """With a TMPDIR too long for a Unix socket's path (over 107 bytes), the bridge could not open its unix
    listener and answered every same-host fetch `internal`. It now offers the client's next choice, or frames."""
    import tempfile

    from bridge.service.server import BridgeServer

    root, cat, cache = small_library
    long_tmp = tmp_path / ("t" * 60) / ("u" * 60)
    long_tmp.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(long_tmp))
    server = BridgeServer(cat, bind="tcp://127.0.0.1:0", cache_dir=cache)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        endpoint = server.wait_ready()
        for wanted, channel in (("auto", "tcp"), ("unix", "frames"), ("auto", "tcp")):
            with connect(endpoint, data_channel=wanted) as c:
                dest = tmp_path / "dl" / f"{wanted}-{channel}.mov"
                t = c.fetch(dest, path=str(root / "sh010_plate.mov"))
                assert c.wait(lambda t=t: t.finished, 10) and t.done, (wanted, t.error)
                assert t.channel == channel and dest.read_bytes() == (root / "sh010_plate.mov").read_bytes()
    finally:
        server.stop()
        thread.join(10)


def test_a_push_to_a_blender_that_has_quit_is_not_reported_delivered(small_library, bridge_process) -> None:
    """Blender quit (its session is still listed for SESSION_TTL_S): `mediaidx push` said "delivered" and the
    shots went nowhere. The pusher now hears that the session disconnected; a live session still gets them."""
    _root, cat, cache = small_library
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint, "pusher") as pusher:
        aid = pusher.call("search", {"query": "plate"})["results"][0]["id"]
        live = connect(bridge.endpoint, "lighting")
        got: list[dict[str, Any]] = []
        live.on("shots", lambda d, m: got.append(d))
        assert pusher.call("push", {"to": "lighting", "shots": [{"asset": aid}]}) == {"delivered": 1, "to": "lighting"}
        assert live.wait(lambda: got, 5) and got[0]["shots"][0]["asset"]["id"] == aid
        live.stop()  # Blender closed
        time.sleep(0.5)
        assert "lighting" in [s["name"] for s in pusher.call("sessions")]
        with pytest.raises(P.RemoteError) as err:
            pusher.call("push", {"to": "lighting", "shots": [{"asset": aid}]})
        assert err.value.code == P.NOT_FOUND and "disconnected" in err.value.message
        assert "lighting" not in [s["name"] for s in pusher.call("sessions")]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the bridge's memory from /proc")
def test_a_client_that_fetches_and_never_reads_cannot_grow_the_bridge_without_bound(tmp_path: Path,
                                                                                   bridge_process) -> None:
    """Chunks a client does not read stay queued in the bridge, in their read buffers: 12 fetches of 4 MiB chunks
    with a window of 64, never read, grew the bridge by about 1.5 GiB (a few more and it is killed), and its loop
    spun a whole core waiting for them. Buffers per client connection are capped now, the loop rests, and a
    client that reads still gets its files meanwhile."""
    root = tmp_path / "m"
    root.mkdir()
    with open(root / "huge.mov", "wb") as fh:
        fh.truncate(1 << 30)  # sparse
    (root / "small.mov").write_bytes(os.urandom(3 << 20))
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(root, probe=False)
    bridge = bridge_process(cat, cache)

    def rss_mib() -> int:
        status = Path(f"/proc/{bridge.proc.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) // 1024

    def cpu_s() -> float:
        fields = Path(f"/proc/{bridge.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before = rss_mib()
    hog = zmq.Context.instance().socket(zmq.DEALER)
    hog.setsockopt(zmq.LINGER, 0)
    hog.setsockopt(zmq.RCVHWM, 1)
    hog.connect(bridge.endpoint)
    try:
        for _ in range(12):
            hog.send(P.encode(P.request("fetch", {"path": str(root / "huge.mov"), "chunk": 4 << 20, "window": 64})))
        peak = before
        for _ in range(10):
            time.sleep(0.2)
            peak = max(peak, rss_mib())
        cpu, wall = cpu_s(), time.monotonic()
        for _ in range(10):
            time.sleep(0.2)
            peak = max(peak, rss_mib())
        busy = (cpu_s() - cpu) / (time.monotonic() - wall)
        assert peak - before < 512, f"the bridge grew by {peak - before} MiB for a client that reads nothing"
        assert busy < 0.5, f"the bridge's loop used {busy:.0%} of a core waiting on a client that reads nothing"
        with connect(bridge.endpoint, data_channel="frames") as c:
            t = c.fetch(tmp_path / "dl" / "small.mov", path=str(root / "small.mov"))
            assert c.wait(lambda: t.finished, 20) and t.done, t.error
    finally:
        hog.close(0)
    assert (tmp_path / "dl" / "small.mov").read_bytes() == (root / "small.mov").read_bytes()


def test_a_refused_key_says_so_instead_of_connecting_forever(small_library, tmp_path: Path) -> None:
    """An exposed bridge refuses a client whose key it has not authorized, one with the wrong server key, and one
    without keys: the client stayed "connecting" with no reason given (`mediaidx push` said "no bridge answering").
    Its ``last_error`` now says what is wrong; an authorized client still gets in."""
    from bridge.service.security import Keys, load_client_keys
    from bridge.service.server import BridgeServer

    _root, cat, cache = small_library
    keys = Keys(tmp_path / "keys")
    keys.create_server()
    _pub, secret = keys.create_client("ws1")
    server = BridgeServer(cat, bind="tcp://0.0.0.0:0", cache_dir=cache, keys_dir=keys.folder)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        endpoint = "tcp://127.0.0.1:" + server.wait_ready().rsplit(":", 1)[1]
        server_key = keys.public_text()
        cases = (("unknown client key", {"server_public_key": server_key, "client_keys": zmq.curve_keypair()},
                  "refused this client's key"),
                 ("wrong server key", {"server_public_key": zmq.curve_keypair()[0]}, "check its server key"),
                 ("no keys", {}, "requires CURVE keys"))
        for label, kw, says in cases:  # (the label, not the keys, in a failure's message)
            c = BridgeClient(endpoint, name="stranger", heartbeat_s=0.2, **kw).start()
            try:
                assert c.wait(lambda c=c: c.last_error is not None, 5), label
                assert says in c.last_error and c.state != "connected", (label, c.last_error)
            finally:
                c.stop()
        friend = BridgeClient(endpoint, name="ws1", heartbeat_s=0.2, server_public_key=server_key,
                              client_keys=load_client_keys(secret)).start()
        try:
            assert friend.wait(lambda: friend.state == "connected", 10) and friend.last_error is None
        finally:
            friend.stop()
    finally:
        server.stop()
        thread.join(10)


def test_a_refused_hello_says_why(small_library, bridge_process) -> None:
    """A session name the bridge refuses (over 64 characters, e.g. built from a long .blend name): the client
    stayed "connecting" with no reason; its ``last_error`` now carries the bridge's answer."""
    _root, cat, cache = small_library
    bridge = bridge_process(cat, cache)
    c = BridgeClient(bridge.endpoint, name="n" * 65, heartbeat_s=0.2).start()
    try:
        assert c.wait(lambda: c.last_error is not None, 5)
        assert "session name must be 1 to 64 characters" in c.last_error and c.state != "connected"
    finally:
        c.stop()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
@pytest.mark.parametrize("channel", ["frames", "auto"])
def test_fetching_or_probing_a_named_pipe_or_folder_is_refused_and_the_bridge_lives_on(small_library, bridge_process,
                                                                                      tmp_path: Path, channel) -> None:
    """A named pipe inside a root (some tools leave them): `fetch` opened it on the bridge's loop thread and waited
    for a writer forever, so the whole bridge stopped answering everyone. A pipe or folder is now refused at once."""
    root, cat, cache = small_library
    os.mkfifo(root / "render.pipe.mov")
    (root / "folder.mov").mkdir()
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint, data_channel=channel) as c:
        for name in ("render.pipe.mov", "folder.mov"):
            t = c.fetch(tmp_path / "dl" / name, path=str(root / name))
            assert c.wait(lambda t=t: t.finished, 5), f"fetch of {name} never ended"
            assert t.error is not None and t.error.code == P.FORBIDDEN and "regular file" in t.error.message
            with pytest.raises(P.RemoteError) as err:
                c.call("probe", {"path": str(root / name)}, timeout_s=5)
            assert err.value.code == P.FORBIDDEN and "regular file" in err.value.message
        assert c.call("search", {"query": "plate"}, timeout_s=5)["total"] == 1
        ok = c.fetch(tmp_path / "dl" / "sh010.mov", path=str(root / "sh010_plate.mov"))
        assert c.wait(lambda: ok.finished, 10) and ok.done, ok.error


def test_the_thumbnail_op_makes_no_picture_of_a_file_outside_the_roots(tmp_path: Path, bridge_process) -> None:
    """A catalogued still (scanned without thumbnails) swapped for a link to a picture outside the roots: `fetch`
    refused it, but `thumbnail` made a picture of the outside file and sent it to any local client."""
    root, outside = tmp_path / "media", tmp_path / "private"
    root.mkdir()
    outside.mkdir()
    synth.make_image(root / "still.png", width=64, height=48)
    synth.make_image(outside / "secret.png", width=64, height=48)
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(root)  # no --thumbs: the thumbnail op makes one when asked
        (aid,) = [a.id for a in ix.search("still")]
    (root / "still.png").unlink()
    os.symlink(outside / "secret.png", root / "still.png")
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint) as c:
        with pytest.raises(P.RemoteError) as err:
            c.call("thumbnail", {"asset": aid}, timeout_s=20)
        assert err.value.code == P.FORBIDDEN
    assert not list(cache.rglob("*.jpg"))
