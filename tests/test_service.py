"""The bridge service over real ZeroMQ sockets on loopback, with a real `mediaidx serve` process."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xxhash
import zmq

from blender_mediaidx.core import protocol as P
from blender_mediaidx.core.client import BridgeClient
from bridge import MediaIndexer, synth

CLI = [sys.executable, "-m", "bridge.cli.app"]


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(media root, catalog, cache) with three clips scanned."""
    root = tmp_path / "media"
    root.mkdir()
    synth.make_video(root / "sh010_plate.mov", frames=12, width=64, height=48, audio=synth.tone())
    synth.make_video(root / "sh020_plate.mp4", frames=10, width=64, height=48)
    # Not media: fails the probe, still served. Big enough (512 chunks of 64 KiB, one credit each) that a
    # test sees a transfer in flight however loaded the machine is.
    (root / "big.bin.mov").write_bytes(os.urandom(32 << 20) + b"tail")
    synth.make_image(root / "ref.jpg", width=32, height=32)
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(root, thumbs=True)
    return root, cat, cache


def connect(endpoint: str, name: str = "tester", **kw: object) -> BridgeClient:
    c = BridgeClient(endpoint, name=name, heartbeat_s=0.2, dead_after_s=1.0, **kw).start()
    assert c.wait(lambda: c.state == "connected", 10), c.last_error
    return c


def asset_id(client: BridgeClient, name: str) -> int:
    res = client.call("search", {"query": name.split(".")[0], "filters": {"status": None}})
    return next(a["id"] for a in res["results"] if a["name"] == name)


def test_hello_search_show_stats_sessions(library, bridge_process) -> None:
    _root, cat, cache = library
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint, "lighting-station") as c:
        assert c.session["session"] == "lighting-station" and c.session["protocol"] == P.PROTOCOL_VERSION
        found = c.call("search", {"query": "plate", "filters": {"kind": "video"}})
        assert found["total"] == 2 and {a["name"] for a in found["results"]} == {"sh010_plate.mov", "sh020_plate.mp4"}
        shown = c.call("show", {"asset": found["results"][0]["id"]})
        assert shown["probe"]["streams"][0]["type"] in ("video", "audio")
        assert c.call("stats")["by_kind"]["video"] >= 2
        assert [s["name"] for s in c.call("sessions")] == ["lighting-station"]
        with pytest.raises(P.RemoteError) as err:
            c.call("show", {"asset": 9999})
        assert err.value.code == P.NOT_FOUND
        with pytest.raises(P.RemoteError) as err:
            c.call("search", {"limit": "many"})
        assert err.value.code == P.BAD_REQUEST and "limit" in err.value.message
        thumb = c.call("thumbnail", {"asset": asset_id(c, "sh010_plate.mov")})
        assert thumb["format"] == "jpg" and thumb["data"][:2] == b"\xff\xd8"


def test_scan_job_reports_progress_and_can_be_cancelled(library, bridge_process) -> None:
    root, cat, cache = library
    for i in range(30):
        synth.make_image(root / f"new_{i:02d}.png", width=16 + i, height=16)
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint) as c:
        progress, done = [], []
        c.on("job.progress", lambda d, m: progress.append(d))
        c.on("job.done", lambda d, m: done.append(d))
        job = c.call("scan", {"thumbs": False})["job"]
        assert c.wait(lambda: done, 60)
        assert done[0]["job"] == job and done[0]["state"] == "done"
        assert done[0]["summary"]["added"] == 30
        assert progress and all(p["job"] == job for p in progress)
        assert c.call("jobs")[0]["state"] == "done"
        with pytest.raises(P.RemoteError):
            c.call("cancel", {"job": 12345})


def test_fetch_streams_verifies_and_resumes(library, bridge_process, tmp_path: Path) -> None:
    root, cat, cache = library
    bridge = bridge_process(cat, cache)
    src = root / "big.bin.mov"
    dest = tmp_path / "dl" / "big.mov"
    with connect(bridge.endpoint, "fetcher", data_channel="frames") as c:  # frames: slow enough to interrupt
        big = asset_id(c, "big.bin.mov")
        # Interrupt: stop the client after a few chunks (Blender closed mid-download).
        got: list[int] = []
        c.fetch(dest, asset=big, chunk_size=64 << 10, window=1, on_progress=lambda t: got.append(t.received))
        assert c.wait(lambda: got and got[-1] >= 256 << 10, 20)
    part = dest.with_name(dest.name + ".part")
    assert part.exists() and not dest.exists()
    partial = part.stat().st_size
    assert 0 < partial < src.stat().st_size
    # Resume with a new client: only the rest crosses the wire, the result is verified.
    with connect(bridge.endpoint, "fetcher") as c:
        t = c.fetch(dest, asset=big, chunk_size=256 << 10)
        assert c.wait(lambda: t.finished, 30) and t.done, t.error
        assert t.resumed_from >= partial - (256 << 10) and t.resumed_from > 0
    assert dest.read_bytes() == src.read_bytes() and not part.exists()
    # The bridge process killed mid-transfer: a new bridge, the same fetch resumes.
    dest2 = tmp_path / "dl" / "again.mov"
    with connect(bridge.endpoint, "fetcher", data_channel="frames") as c:
        got = []
        c.fetch(dest2, asset=big, chunk_size=64 << 10, window=1, on_progress=lambda t: got.append(t.received))
        assert c.wait(lambda: got and got[-1] >= 128 << 10, 20)
        bridge.proc.kill()
        bridge.proc.wait()
    bridge2 = bridge_process(cat, cache)
    with connect(bridge2.endpoint, "fetcher") as c:
        t = c.fetch(dest2, asset=big)
        assert c.wait(lambda: t.finished, 30) and t.done, t.error
        assert t.resumed_from > 0
    assert xxhash.xxh3_128(dest2.read_bytes()).digest() == xxhash.xxh3_128(src.read_bytes()).digest()


def test_fetch_restarts_when_the_file_changed(library, bridge_process, tmp_path: Path) -> None:
    root, cat, cache = library
    bridge = bridge_process(cat, cache)
    src = root / "big.bin.mov"
    dest = tmp_path / "dl" / "big.mov"
    with connect(bridge.endpoint, data_channel="frames") as c:
        big = asset_id(c, "big.bin.mov")
        got: list[int] = []
        c.fetch(dest, asset=big, chunk_size=64 << 10, window=1, on_progress=lambda t: got.append(t.received))
        assert c.wait(lambda: got and got[-1] >= 128 << 10, 20)
    src.write_bytes(os.urandom(1 << 20))  # re-rendered on the server meanwhile
    with connect(bridge.endpoint) as c:
        t = c.fetch(dest, asset=big)
        assert c.wait(lambda: t.finished, 30) and t.done, t.error
    assert dest.read_bytes() == src.read_bytes()


def test_only_files_inside_the_roots_are_served(library, bridge_process, tmp_path: Path) -> None:
    root, cat, cache = library
    secret = tmp_path / "secret.txt"
    secret.write_text("not for you")
    os.symlink(secret, root / "escape.mov")
    os.symlink(tmp_path, root / "escape_dir")
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint) as c:
        for path in (str(secret), str(root / ".." / "secret.txt"), str(root / "escape.mov"),
                     str(root / "escape_dir" / "secret.txt"), "relative/file.mov", "/etc/passwd"):
            t = c.fetch(tmp_path / "x" / "out", path=path)
            assert c.wait(lambda t=t: t.finished, 10)
            assert t.error is not None and t.error.code == P.FORBIDDEN, (path, t.error)
            with pytest.raises(P.RemoteError) as err:
                c.call("probe", {"path": path})
            assert err.value.code == P.FORBIDDEN
        ok = c.fetch(tmp_path / "x" / "ref.jpg", path=str(root / "ref.jpg"))
        assert c.wait(lambda: ok.finished, 10) and ok.done
        assert not (tmp_path / "x" / "out").exists()


# -- which roots a client may scan (bridge/service/rootpolicy.py) --------------------------------------------------

def _forbidden(c: BridgeClient, args: dict) -> str:
    with pytest.raises(P.RemoteError) as err:
        c.call("scan", args)
    assert err.value.code == P.FORBIDDEN, (args, err.value)
    return err.value.message


def _scan_done(c: BridgeClient, args: dict) -> dict:
    done: list[dict] = []
    c.on("job.done", lambda d, m: done.append(d))
    job = c.call("scan", args)["job"]
    assert c.wait(lambda: any(d["job"] == job for d in done), 60)
    return next(d for d in done if d["job"] == job)


def test_a_client_may_scan_only_the_catalogs_roots(library, bridge_process, tmp_path: Path) -> None:
    """Another local user must not register their way to the owner's files: scan their home folder, then
    fetch .ssh/id_rsa. Refused before anything starts, dry runs too; the catalog's own root still scans."""
    root, cat, cache = library
    private = tmp_path / "home"
    (private / ".ssh").mkdir(parents=True)
    (private / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    synth.make_image(private / "holiday.jpg", width=16, height=16)
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint) as c:
        message = _forbidden(c, {"roots": [str(private)]})
        assert message.startswith(f"{private}: not a root of this catalog") and "\n" not in message
        assert f"mediaidx scan {private}" in message and "--allow-root" in message
        for args in ({"roots": [str(private)], "dry_run": True}, {"roots": [str(root), str(private)]},
                     {"roots": ["/"]}, {"roots": [str(root / ".." / "home")]}, {"roots": [str(root / "sub")]},
                     {"roots": ["smb://attacker.example/share"]}, {"roots": ["sftp://attacker.example/home"]},
                     {"roots": ["relative/folder"]}):
            _forbidden(c, args)
        assert c.call("jobs") == []  # nothing started
        assert c.call("hello", {"name": "tester"})["roots"] == [str(root)]  # nothing registered
        t = c.fetch(tmp_path / "dl" / "id_rsa", path=str(private / ".ssh" / "id_rsa"))
        assert c.wait(lambda: t.finished, 10) and t.error is not None and t.error.code == P.FORBIDDEN
        # The catalog's root, named or by default: scanned as before.
        (root / "new.png").write_bytes((root / "ref.jpg").read_bytes())
        assert _scan_done(c, {"roots": [str(root) + "/"], "thumbs": False})["state"] == "done"
        assert _scan_done(c, {"thumbs": False, "dry_run": True})["state"] == "done"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        assert [r["url"] for r in ix.roots()] == [str(root)]


def test_allowed_folders_can_be_scanned_but_not_left(library, bridge_process, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --allow-root PARENT` (and MEDIAIDX_ALLOW_ROOTS, URLs on lines of their own): a folder inside
    may be scanned and is registered; a symlink inside that leads out, or a URL outside the prefix, may not."""
    root, cat, cache = library
    shared, outside = tmp_path / "shared", tmp_path / "outside"
    (shared / "shoot1").mkdir(parents=True)
    outside.mkdir()
    for i in range(3):
        synth.make_image(shared / "shoot1" / f"still_{i}.png", width=16 + i, height=16)
    synth.make_image(outside / "private.png", width=16, height=16)
    os.symlink(outside, shared / "escape")
    monkeypatch.setenv("MEDIAIDX_ALLOW_ROOTS", "sftp://127.0.0.1:1/allowed\n")
    bridge = bridge_process(cat, cache, ["--allow-root", str(shared)])
    with connect(bridge.endpoint) as c:
        for bad in (str(outside), str(shared / "escape"), str(shared / "escape" / "deeper"), str(tmp_path),
                    "sftp://127.0.0.1:1/elsewhere", "sftp://127.0.0.1:1/allowedx", "sftp://someone@127.0.0.1:1/allowed",
                    "sftp://127.0.0.1:1/allowed/../etc", "smb://127.0.0.1/allowed"):
            _forbidden(c, {"roots": [bad], "dry_run": True})
        assert c.call("jobs") == []
        done = _scan_done(c, {"roots": [str(shared / "shoot1")], "thumbs": False})
        assert done["state"] == "done" and done["summary"]["added"] == 3
        assert sorted(c.call("hello", {"name": "tester"})["roots"]) == sorted([str(root), str(shared / "shoot1")])
        ok = c.fetch(tmp_path / "dl" / "still_0.png", path=str(shared / "shoot1" / "still_0.png"))
        assert c.wait(lambda: ok.finished, 10) and ok.done, ok.error
        # Inside the allowed URL prefix: the scan starts (and fails: nothing listens on port 1).
        failed = _scan_done(c, {"roots": ["sftp://127.0.0.1:1/allowed/shots"], "dry_run": True})
        assert failed["state"] == "failed" and "cannot connect" in failed["error"]
    with MediaIndexer(cat, cache_dir=cache) as ix:
        assert not ix.search(None, root=str(outside)) and not any("outside" in r["url"] for r in ix.roots())


def test_allowed_roots_are_parsed_and_a_bad_one_stops_serve(tmp_path: Path) -> None:
    from bridge.service.rootpolicy import RootPolicy, parse_allow_env

    assert parse_allow_env(f"/a{os.pathsep}/b c\n  sftp://nas:22/media \n\n/d") == ["/a", "/b c", "sftp://nas:22/media", "/d"]
    policy = RootPolicy.from_options(["/srv/media/"], {"MEDIAIDX_ALLOW_ROOTS": "SMB://nas/share\n/x"})
    assert policy.allowed == ["/srv/media", "/x", "smb://nas/share"]
    cat = tmp_path / "cat.sqlite"
    for bad in ("sftp://nas/a/../b", "http://example.com/x", "smb://user:pw@nas/share"):
        r = subprocess.run([*CLI, "--catalog", str(cat), "serve", "--bind", "tcp://127.0.0.1:*", "--no-http",
                            "--allow-root", bad], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "listening" not in r.stdout, (bad, r.stderr)


def test_the_cli_and_the_python_api_are_not_limited(tmp_path: Path) -> None:
    """The owner runs them: any folder scans, a workflow writes where it is told."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
        synth.make_image(d / "x.png", width=16, height=16)
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    r = subprocess.run([*CLI, "--catalog", str(cat), "--cache-dir", str(cache), "scan", str(a), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["added"] == 1, r.stderr
    with MediaIndexer(cat, cache_dir=cache) as ix:
        assert ix.scan(b).added == 1
        steps = ix.run_workflow([{"action": "scan", "root": str(c), "follow_symlinks": True},
                                 {"action": "backup", "backup_root": str(tmp_path / "anywhere"), "create_root": True}])
        assert [s["status"] for s in steps] == ["ok", "ok"] and (tmp_path / "anywhere").is_dir()


def test_push_from_the_cli_reaches_the_named_session(library, bridge_process) -> None:
    root, cat, cache = library
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint, "comp-01") as blender:
        received: list[dict] = []
        blender.on("shots", lambda d, m: received.append(d))
        sid = asset_id(blender, "sh010_plate.mov")
        args = [*CLI, "--catalog", str(cat), "push", str(sid), str(root / "sh020_plate.mp4"),
                "--to", "comp-01", "--mode", "strip", "--bridge", bridge.endpoint, "--json"]
        dry = subprocess.run([*args, "--dry-run"], capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0, dry.stderr
        plan = json.loads(dry.stdout)
        assert plan["dry_run"] is True and plan["would_deliver"] == 2 and plan["to"] == "comp-01"
        assert [s["mode"] for s in plan["shots"]] == ["strip", "strip"] and plan["shots"][0]["asset"] == sid
        assert plan["shots"][1]["path"] == str(root / "sh020_plate.mp4")
        assert not blender.wait(lambda: received, 1.0)  # the dry run sent nothing
        dry_bad = subprocess.run([*args[:-1], "--dry-run", "--to", "nobody"], capture_output=True, text=True,
                                 timeout=60)
        assert dry_bad.returncode == 1 and "no Blender session named 'nobody'" in dry_bad.stderr
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"delivered": 2, "to": "comp-01"}
        assert blender.wait(lambda: received, 10)
        shots = received[0]["shots"]
        assert [s["mode"] for s in shots] == ["strip", "strip"]
        assert shots[0]["asset"]["id"] == sid and shots[0]["asset"]["probe"]["streams"]
        assert shots[0]["asset"]["fps"] == "25/1"
        bad = subprocess.run([*CLI, "--catalog", str(cat), "push", str(sid), "--to", "nobody", "--bridge",
                              bridge.endpoint], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "no Blender session named 'nobody'" in bad.stderr
        assert "comp-01" in bad.stderr


def test_disconnect_is_noticed_and_the_session_comes_back(library, bridge_process, tmp_path: Path) -> None:
    _root, cat, cache = library
    bridge = bridge_process(cat, cache)
    endpoint = bridge.endpoint
    port = int(endpoint.rsplit(":", 1)[1])
    c = connect(endpoint, "survivor")
    states: list[str] = []
    c.on("state", lambda s, m: states.append(s))
    bridge.stop()
    assert c.wait(lambda: c.state == "disconnected", 10)
    failed: list[P.RemoteError] = []
    c.request("search", {}, on_error=failed.append, timeout_s=0.5)
    assert c.wait(lambda: failed, 5) and failed[0].code in (P.UNAVAILABLE, P.TIMEOUT)
    # The bridge comes back on the same port: the client reconnects and registers again.
    again = subprocess.Popen([*CLI, "--catalog", str(cat), "--cache-dir", str(cache), "serve", "--bind",
                              f"tcp://127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening" in again.stdout.readline()
        assert c.wait(lambda: c.state == "connected", 15)
        assert "survivor" in [s["name"] for s in c.call("sessions")]
        assert states[:2] == ["disconnected", "connected"]
    finally:
        c.stop()
        again.terminate()
        again.wait(10)


def test_fuzzed_frames_never_stop_the_bridge(library, bridge_process) -> None:
    _root, cat, cache = library
    bridge = bridge_process(cat, cache)
    ctx = zmq.Context.instance()
    rng = random.Random(1234)
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(bridge.endpoint)
    samples = [
        P.encode({"v": 1}), P.encode({"v": 1, "id": 1}), P.encode({"v": 99, "id": 1, "op": "search"}),
        P.encode({"v": 1, "id": 1, "op": "nope"}), P.encode({"v": 1, "id": [1], "op": "search"}),
        P.encode({"v": 1, "id": 1, "op": "search", "args": []}), P.encode([1, 2, 3]), P.encode("text"),
        P.encode({"v": 1, "id": 1, "op": "fetch", "args": {"asset": "x"}}),
        P.encode({"v": 1, "id": 1, "op": "push", "args": {"to": 5, "shots": "all"}}),
        P.encode({"v": 1, "id": 1, "op": "credit", "args": {"transfer": -1, "n": 10**9}}),
        b"", b"\xc1", b"\x81\xa1v", b"\xdf\xff\xff\xff\xff",
    ]
    for i in range(3000):
        kind = rng.random()
        if kind < 0.4:
            frames = [os.urandom(rng.randint(0, 300))]
        elif kind < 0.7:
            frames = [rng.choice(samples)]
        elif kind < 0.85:
            frames = [rng.choice(samples), os.urandom(rng.randint(0, 100))] * rng.randint(1, 3)
        else:
            body = bytearray(rng.choice(samples[:11]))
            if body:
                body[rng.randrange(len(body))] = rng.randrange(256)
            frames = [bytes(body)]
        sock.send_multipart(frames)
        if i % 500 == 0:
            while sock.poll(0):
                sock.recv_multipart()
    # An oversized frame: libzmq drops that peer, the bridge carries on.
    huge = ctx.socket(zmq.DEALER)
    huge.setsockopt(zmq.LINGER, 0)
    huge.connect(bridge.endpoint)
    huge.send(b"\x00" * (P.MAX_MESSAGE_BYTES + 1024))
    time.sleep(0.2)
    sock.close(0)
    huge.close(0)
    with connect(bridge.endpoint, "after-fuzz") as c:
        assert c.call("search", {"query": "plate"})["total"] == 2
    assert bridge.proc.poll() is None


def test_an_exposed_bridge_needs_keys_and_refuses_strangers(library, tmp_path: Path) -> None:
    _root, cat, cache = library
    refused = subprocess.run([*CLI, "--catalog", str(cat), "serve", "--bind", "tcp://0.0.0.0:0"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "refusing to listen" in refused.stderr
    keys = tmp_path / "keys"
    dry = subprocess.run([*CLI, "keys", "--dir", str(keys), "--client", "studio-ws1", "--dry-run"],
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and not keys.exists(), dry.stderr  # the dry run writes nothing
    made = subprocess.run([*CLI, "keys", "--dir", str(keys), "--client", "studio-ws1"], capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    written = sorted(str(p) for p in keys.rglob("*") if p.is_file())
    planned = sorted(line.split()[1] for line in dry.stdout.splitlines() if line.startswith("write"))
    assert planned == written  # ... and lists exactly the files the real run writes
    server_pub = (keys / "server.key")
    proc = subprocess.Popen([*CLI, "--catalog", str(cat), "--cache-dir", str(cache), "serve", "--bind",
                             "tcp://0.0.0.0:*", "--keys", str(keys)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert "listening" in line, proc.stderr.read()
        port = line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1]
        endpoint = f"tcp://127.0.0.1:{port}"
        from bridge.service.client import server_key_text
        from bridge.service.security import load_client_keys

        pub = server_key_text(str(server_pub))
        # No keys at all; a key pair the bridge does not know: never connected.
        for kw in ({}, {"server_public_key": pub}, {"server_public_key": pub, "client_keys": zmq.curve_keypair()}):
            stranger = BridgeClient(endpoint, name="stranger", heartbeat_s=0.2, **kw).start()
            try:
                assert not stranger.wait(lambda s=stranger: s.state == "connected", 2.0)
            finally:
                stranger.stop()
        friend = BridgeClient(endpoint, name="ws1", heartbeat_s=0.2, server_public_key=pub,
                              client_keys=load_client_keys(keys / "clients" / "studio-ws1.key_secret")).start()
        try:
            assert friend.wait(lambda: friend.state == "connected", 10)
            assert friend.call("search", {"query": "plate"})["total"] == 2
            # An exposed bridge never offers the same-host data channel, even to a client that asks for it.
            t = friend.fetch(tmp_path / "dl" / "ref.jpg", path=str(_root / "ref.jpg"))
            assert friend.wait(lambda: t.finished, 10) and t.done and t.channel == "frames", t.error
        finally:
            friend.stop()
    finally:
        proc.terminate()
        proc.wait(10)


# -- the same-host data channel (docs/protocol.md) ----------------------------------------------------------------

def test_a_same_host_fetch_uses_the_data_channel(library, bridge_process, tmp_path: Path) -> None:
    root, cat, cache = library
    bridge = bridge_process(cat, cache)
    src = (root / "big.bin.mov").read_bytes()
    for channel, expected in ((None, "unix"), ("tcp", "tcp"), ("frames", "frames")):
        with connect(bridge.endpoint, data_channel=channel) as c:
            dest = tmp_path / "dl" / f"{expected}.mov"
            t = c.fetch(dest, asset=asset_id(c, "big.bin.mov"))
            assert c.wait(lambda t=t: t.finished, 30) and t.done, (channel, t.error)  # done = hashes matched
            assert t.channel == expected and dest.read_bytes() == src
            assert not dest.with_name(dest.name + ".part").exists()


def test_an_unreachable_data_channel_falls_back_to_frames(library, bridge_process, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The address looks local but the bridge's socket is not there for this client (a sandboxed Blender with
    its own /tmp, an SSH tunnel): the fetch still completes, over frames, and later fetches skip the channel."""
    root, cat, cache = library
    bridge_tmp = tmp_path / "bridge-tmp"
    bridge_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(bridge_tmp))  # where the bridge process makes its socket folder
    bridge = bridge_process(cat, cache)
    src = (root / "sh010_plate.mov").read_bytes()
    with connect(bridge.endpoint) as c:
        clip = asset_id(c, "sh010_plate.mov")
        t = c.fetch(tmp_path / "dl" / "first.mov", asset=clip)
        assert c.wait(lambda: t.finished, 30) and t.done and t.channel == "unix", t.error
        sockets = [p for p in bridge_tmp.rglob("*") if p.is_socket()]
        assert sockets, "the bridge made no Unix socket under TMPDIR"
        for p in sockets:
            p.unlink()  # from here on, this client cannot reach the bridge's socket
        for name in ("second.mov", "third.mov"):
            dest = tmp_path / "dl" / name
            t = c.fetch(dest, asset=clip)
            assert c.wait(lambda t=t: t.finished, 30) and t.done, t.error
            assert t.channel == "frames" and dest.read_bytes() == src


def test_a_data_channel_fetch_resumes_after_an_interruption(library, bridge_process, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from blender_mediaidx.core import client as client_mod

    root, cat, cache = library
    bridge = bridge_process(cat, cache)
    src = root / "big.bin.mov"
    dest = tmp_path / "dl" / "big.mov"

    class SlowHash:  # a slow disk on the client: slow enough to stop it mid-transfer
        def __init__(self) -> None:
            self.h = xxhash.xxh3_128()

        def update(self, data: object) -> None:
            time.sleep(0.002)
            self.h.update(data)

        def hexdigest(self) -> str:
            return self.h.hexdigest()

    monkeypatch.setattr(client_mod, "DATA_BUFFER", 64 << 10)
    monkeypatch.setattr(client_mod, "_hasher", SlowHash)
    with connect(bridge.endpoint, "fetcher") as c:
        got: list[int] = []
        t = c.fetch(dest, asset=asset_id(c, "big.bin.mov"), on_progress=lambda t: got.append(t.received))
        assert c.wait(lambda: got and got[-1] >= 256 << 10, 20) and t.channel == "unix"
    part = dest.with_name(dest.name + ".part")
    assert part.exists() and 0 < part.stat().st_size < src.stat().st_size and not dest.exists()
    monkeypatch.undo()
    with connect(bridge.endpoint, "fetcher") as c:
        t = c.fetch(dest, asset=asset_id(c, "big.bin.mov"))
        assert c.wait(lambda: t.finished, 30) and t.done, t.error
        assert t.channel == "unix" and t.resumed_from > 0
    assert dest.read_bytes() == src.read_bytes() and not part.exists()


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_data_channel_tickets_are_single_use_and_a_stalled_peer_blocks_nobody(library, bridge_process,
                                                                              kind: str) -> None:
    import socket

    root, cat, cache = library
    bridge = bridge_process(cat, cache)
    want = (root / "ref.jpg").read_bytes()
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)
    sock.connect(bridge.endpoint)

    def offer() -> dict:
        sock.send(P.encode(P.request("fetch", {"path": str(root / "ref.jpg"), "channels": [kind]})))
        reply = P.decode(sock.recv())
        assert reply["ok"], reply
        return reply["result"]["channel"]

    def dial(ch: dict, ticket: bytes) -> bytes:
        s = socket.socket(socket.AF_UNIX if kind == "unix" else socket.AF_INET)
        s.settimeout(10)
        s.connect(ch["address"] if kind == "unix" else tuple(ch["address"]))
        s.sendall(ticket)
        if len(ticket) < 32:
            s.shutdown(socket.SHUT_WR)  # and nothing more
        data = b""
        while more := s.recv(1 << 16):
            data += more
        s.close()
        return data

    try:
        ch = offer()
        assert ch["kind"] == kind and len(ch["ticket"]) == 32
        if kind == "tcp":
            assert ch["address"][0] == "127.0.0.1"
        staller = socket.socket(socket.AF_UNIX if kind == "unix" else socket.AF_INET)
        staller.connect(ch["address"] if kind == "unix" else tuple(ch["address"]))  # sends nothing, holds on
        assert dial(ch, os.urandom(32)) == b""          # a forged ticket: closed, nothing sent
        assert dial(ch, ch["ticket"][:31]) == b""        # a short one too
        assert dial(ch, ch["ticket"]) == want            # the real one, while the staller still hangs on
        done = P.decode(sock.recv())
        assert done["event"] == "fetch.done" and done["data"]["hash"] == xxhash.xxh3_128_hexdigest(want)
        assert dial(ch, ch["ticket"]) == b""             # reused: nothing
        staller.close()
    finally:
        sock.close(0)


def test_idle_data_channel_connections_cost_no_thread_and_cannot_lock_out_a_client(tmp_path: Path) -> None:
    """Connections that never send a ticket are held by the listener's one thread (at most MAX_UNVERIFIED, the
    oldest dropped first), so a local user opening hundreds of them neither spawns threads nor blocks a real
    transfer."""
    import socket
    import threading

    from bridge.service import datachannel as dc

    f = tmp_path / "plate.mov"
    f.write_bytes(os.urandom(100_000))
    posted: list[dict] = []
    channel = dc.DataChannel(lambda identity, msg: posted.append(msg))
    idle: list[socket.socket] = []
    try:
        st = f.stat()
        job = dc.ChannelJob(9, b"id", st.st_size, 0, st.st_mtime_ns, fd=os.open(f, os.O_RDONLY))
        offer = channel.offer("unix", job)
        threads_before = threading.active_count()
        for _ in range(dc.MAX_UNVERIFIED + 40):
            s = socket.socket(socket.AF_UNIX)
            s.connect(offer["address"])
            idle.append(s)
        time.sleep(0.3)
        assert threading.active_count() == threads_before  # no thread per idle connection
        dropped = 0
        for s in idle[:40]:  # the oldest were closed to make room
            s.settimeout(5)
            dropped += s.recv(1) == b""
        assert dropped == 40
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(offer["address"])
        s.sendall(offer["ticket"])
        data = b""
        while more := s.recv(1 << 16):
            data += more
        s.close()
        assert data == f.read_bytes()
        deadline = time.monotonic() + 10
        while not posted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert posted and posted[0]["event"] == "fetch.done"
        assert posted[0]["data"]["hash"] == xxhash.xxh3_128_hexdigest(f.read_bytes())
    finally:
        for s in idle:
            s.close()
        channel.close()


def test_an_expired_data_channel_ticket_gets_nothing(tmp_path: Path) -> None:
    import socket

    from bridge.service import datachannel as dc

    f = tmp_path / "plate.mov"
    f.write_bytes(b"frames" * 1000)
    posted: list[dict] = []
    channel = dc.DataChannel(lambda identity, msg: posted.append(msg))
    try:
        st = f.stat()
        job = dc.ChannelJob(7, b"id", st.st_size, 0, st.st_mtime_ns, fd=os.open(f, os.O_RDONLY))
        offer = channel.offer("unix", job)
        job.expires = time.monotonic() - 1  # as if the client came 10 s late
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(offer["address"])
        s.sendall(offer["ticket"])
        assert s.recv(1 << 16) == b""
        s.close()
        assert posted == [] and job.fd == -1  # no events, the file closed
    finally:
        channel.close()
