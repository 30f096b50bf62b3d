"""Scan roots on real S3, SFTP and SMB servers on loopback: sync by metadata, moves, probes and thumbnails
by ranged reads, streaming through the bridge, a server lost mid-scan, bad credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from remote_servers import SECRET, Remote

from blender_mediaidx.core import protocol as P
from bridge import MediaIndexer, synth
from bridge.errors import RootUnavailableError
from bridge.storage import open_storage

CLI = [sys.executable, "-m", "bridge.cli.app"]


def connect(endpoint: str, name: str, data_channel: str | None = None):
    from blender_mediaidx.core.client import BridgeClient

    c = BridgeClient(endpoint, name=name, heartbeat_s=0.2, dead_after_s=1.0, data_channel=data_channel).start()
    assert c.wait(lambda: c.state == "connected", 10), c.last_error
    return c


def asset_id(client, name: str) -> int:
    res = client.call("search", {"query": name.split(".")[0], "filters": {"status": None}})
    return next(a["id"] for a in res["results"] if a["name"] == name)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Distinct small clips (different lengths, so different sizes and fingerprints) and one bigger one."""
    d = tmp_path_factory.mktemp("clips")
    out = {}
    for i, frames in enumerate((8, 10, 12, 14, 16, 18, 20, 22)):
        p = synth.make_video(d / f"c{i}.mp4", frames=frames, width=64, height=48,
                             audio=synth.tone() if i % 2 else None)
        out[f"c{i}"] = p.read_bytes()
    # Motion JPEG of noise: a few MB quickly, the index (moov) at the end as cameras write it.
    big = synth.make_video(d / "big.mov", frames=240, fps=4, width=640, height=480, codec="mjpeg",
                           pix_fmt="yuvj420p", frame_fn=synth.noise(1), audio=synth.tone())
    out["big"] = big.read_bytes()
    return out


def scan(ix: MediaIndexer, remote: Remote, **kw: object):
    return ix.scan(remote.url, jobs=kw.pop("jobs", 2), **kw)  # type: ignore[arg-type]


def by_name(ix: MediaIndexer) -> dict[str, object]:
    return {a.name: a for a in ix.search(None, status=None, limit=100)}


def test_scan_then_rescan_change_add_remove_rename(remote: Remote, clips: dict[str, bytes], tmp_path: Path) -> None:
    remote.put("a/sh010.mp4", clips["c0"], mtime=1_700_000_000)
    remote.put("a/sh020.mov", clips["c1"], mtime=1_700_000_000)
    remote.put("b/sh030.mp4", clips["c2"], mtime=1_700_000_000)
    remote.put("top.mp4", clips["c3"], mtime=1_700_000_000)
    remote.put("b/notes.txt", b"not media")
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        s = scan(ix, remote, thumbs=True)
        assert s.complete and s.counts["added"] == 4 and s.failed == 0, s.issues
        assets = by_name(ix)
        assert set(assets) == {"sh010.mp4", "sh020.mov", "sh030.mp4", "top.mp4"}
        for a in assets.values():
            assert a.status == "ok" and a.kind == "video" and a.width == 64, a
            assert a.thumb and Path(a.thumb).is_file()
            assert a.path.startswith(remote.url + "/")
        moved_id = assets["sh030.mp4"].id
        ix.rate(moved_id, 5)
        ix.tag(moved_id, ["hero"])

        s = scan(ix, remote, thumbs=True)
        assert s.complete and s.counts == {"added": 0, "changed": 0, "moved": 0, "missing": 0, "unchanged": 4,
                                           "failed": 0}

        remote.put("a/sh010.mp4", clips["c4"], mtime=1_700_000_100)   # changed
        remote.put("b/sh040.mp4", clips["c5"], mtime=1_700_000_000)   # added
        remote.delete("top.mp4")                                      # removed
        remote.rename("b/sh030.mp4", "c/sh030_v2.mp4")                # renamed into a new folder
        s = scan(ix, remote, thumbs=True)
        assert s.complete, s.issues
        assert s.counts == {"added": 1, "changed": 1, "moved": 1, "missing": 1, "unchanged": 1, "failed": 0}
        moved = ix.get(moved_id)
        assert moved.name == "sh030_v2.mp4" and moved.rating == 5 and "hero" in moved.tags
        assert moved.path == remote.url + "/c/sh030_v2.mp4"
        assert ix.get(moved.path).id == moved_id  # a remote asset is found by the URL `show` prints
        assert [a.name for a in ix.search(None, status="missing")] == ["top.mp4"]

        s = scan(ix, remote)
        assert s.complete and s.counts["unchanged"] == 4 and s.counts["added"] == s.counts["changed"] == 0


def test_probe_and_thumbnail_by_ranged_reads(remote: Remote, clips: dict[str, bytes], tmp_path: Path) -> None:
    from bridge.probe import probe_file
    from bridge.thumbs import make_thumbnail

    remote.put("plates/big.mov", clips["big"])
    storage = open_storage(remote.url)
    storage.check()
    size = storage.stat(b"plates/big.mov").size
    assert size == len(clips["big"]) > 10_000_000
    with storage.open(b"plates/big.mov") as fh:
        probe = probe_file(fh, name="big.mov")
        assert probe["kind"] == "video" and probe["streams"][0]["width"] == 640
        # the head, the index at the end, the first frames and four short audio windows: a bounded amount,
        # a fifth of this 16 MB clip (bench/bench_remote.py: under 5% of clips over 100 MB)
        assert fh.bytes_fetched < min(size * 0.3, 5 << 20), (fh.bytes_fetched, size)
    assert MediaIndexer(tmp_path / "c.sqlite").probe(remote.url + "/plates/big.mov")["kind"] == "video"
    with storage.open(b"plates/big.mov") as fh:
        info = make_thumbnail(fh, tmp_path / "t.jpg", kind="video", max_size=160)
        assert info["width"] == 160 and (tmp_path / "t.jpg").stat().st_size > 500


def test_fetch_streams_a_remote_file_through_the_bridge(remote: Remote, clips: dict[str, bytes], tmp_path: Path,
                                                       bridge_process) -> None:
    import xxhash

    remote.put("plates/big.mov", clips["big"])
    remote.put("plates/sh010.mp4", clips["c0"])
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        assert scan(ix, remote).complete
    bridge = bridge_process(cat, cache)
    with connect(bridge.endpoint, "blender-remote") as c:
        aid = asset_id(c, "big.mov")
        dest = tmp_path / "got" / "big.mov"
        t = c.fetch(dest, asset=aid, chunk_size=256 << 10, window=4)
        assert c.wait(lambda: t.finished, 60) and t.done, t.error  # done = the bridge's xxh3-128 matched
        assert dest.read_bytes() == clips["big"]
        assert t.channel == "unix"  # same host: the data channel
    # Blender closed mid-download (over frames, slow enough to interrupt): a new session resumes over the data
    # channel, the bridge hashes the remote prefix itself.
    with connect(bridge.endpoint, "blender-remote", data_channel="frames") as c:
        dest2 = tmp_path / "got" / "again.mov"
        got: list[int] = []
        c.fetch(dest2, asset=aid, chunk_size=64 << 10, window=1, on_progress=lambda t: got.append(t.received))
        assert c.wait(lambda: got and got[-1] >= 512 << 10, 30)
    with connect(bridge.endpoint, "blender-remote") as c:
        t = c.fetch(dest2, asset=aid, chunk_size=1 << 20)
        assert c.wait(lambda: t.finished, 60) and t.done, t.error
        assert t.resumed_from > 0 and t.channel == "unix"
        assert xxhash.xxh3_128_hexdigest(dest2.read_bytes()) == xxhash.xxh3_128_hexdigest(clips["big"])
        # By URL inside the root: served. Outside the root, or with '..': refused.
        ok = c.fetch(tmp_path / "got" / "sh010.mp4", path=remote.url + "/plates/sh010.mp4")
        assert c.wait(lambda: ok.finished, 30) and ok.done, ok.error
        assert (tmp_path / "got" / "sh010.mp4").read_bytes() == clips["c0"]
        probe = c.call("probe", {"path": remote.url + "/plates/sh010.mp4"})
        assert probe["kind"] == "video" and probe["streams"][0]["width"] == 64
        # Inside the root but not there: a clear not_found (the stat runs off the bridge's loop).
        gone = c.fetch(tmp_path / "got" / "gone.mp4", path=remote.url + "/plates/nope.mp4")
        assert c.wait(lambda: gone.finished, 30) and gone.error is not None and gone.error.code == "not_found"
        parent = remote.url.rsplit("/", 1)[0]
        for bad in (parent + "/other/x.mp4", remote.url + "/../x.mp4", remote.url + "x/plates/sh010.mp4"):
            t = c.fetch(tmp_path / "got" / "bad", path=bad)
            assert c.wait(lambda t=t: t.finished, 10)
            assert t.error is not None and t.error.code == "forbidden", (bad, t.error)
            with pytest.raises(P.RemoteError) as err:
                c.call("probe", {"path": bad})
            assert err.value.code == "forbidden"


@pytest.mark.parametrize("jobs", [1, 2])
def test_server_stopped_mid_scan_keeps_what_was_indexed_and_resumes(remote: Remote, clips: dict[str, bytes],
                                                                    tmp_path: Path, jobs: int) -> None:
    names = [f"f{i}/clip{i}.mp4" for i in range(8)]
    for i, rel in enumerate(names):
        remote.put(rel, clips[f"c{i}"])
    stopped = []

    def progress(ev) -> None:
        if ev.phase == "work" and ev.work_done >= 2 and not stopped:
            stopped.append(ev.work_done)
            remote.stop()

    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(remote.url, jobs=jobs, thumbs=True, progress=progress)  # jobs=2: worker processes
        assert stopped and not s.complete
        text = " ".join(i.reason for i in s.issues)
        assert "stopped answering" in text or "connection lost" in text, s.issues
        first = {a.name: a for a in ix.search(None, status=None, limit=100)}
        assert 2 <= len(first) < 8
        assert all(a.status == "ok" for a in first.values()), [(a.name, a.status, a.error) for a in first.values()]
        remote.start()
        s = ix.scan(remote.url, jobs=jobs, thumbs=True)
        assert s.complete, s.issues
        after = {a.name: a for a in ix.search(None, status=None, limit=100)}
        assert len(after) == 8 and all(a.status == "ok" for a in after.values())
        assert all(after[n].id == a.id for n, a in first.items())
        assert s.counts["missing"] == 0 and s.counts["added"] == 8 - len(first)


def test_bad_credentials_or_unknown_root_is_one_line_naming_the_root(remote: Remote, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    remote.put("x.mp4", b"\0" * 10)
    parent, _ = remote.url.rsplit("/", 1)
    if remote.kind == "s3":
        unknown = parent.rsplit("/", 1)[0] + "/no-such-bucket/proj"
    elif remote.kind == "smb":
        unknown = parent.rsplit("/", 1)[0] + "/nosuchshare/proj"
    else:
        unknown = parent + "/no/such/folder"
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        with pytest.raises(RootUnavailableError) as e:
            ix.scan(unknown)
        msg = str(e.value)
        assert msg.startswith(unknown + ": ") and "\n" not in msg and SECRET not in msg
        if remote.kind != "s3":  # moto accepts any key; SFTP and SMB check passwords
            wrong = "wrong-" + SECRET[::-1]
            monkeypatch.setenv(f"MEDIAIDX_{remote.kind.upper()}_PASSWORD", wrong)
            with pytest.raises(RootUnavailableError) as e:
                ix.scan(remote.url)
            msg = str(e.value)
            assert msg.startswith(remote.url + ": ") and "\n" not in msg
            assert "access denied" in msg and wrong not in msg and SECRET not in msg


def test_secrets_never_reach_output_logs_or_the_catalog(remote: Remote, clips: dict[str, bytes],
                                                        tmp_path: Path) -> None:
    remote.put("a/sh010.mp4", clips["c1"])
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    env = {**os.environ, **remote.env}
    runs = [subprocess.run([*CLI, "-v", "--catalog", str(cat), "--cache-dir", str(cache), "scan", remote.url,
                            "--thumbs", "-j", "1", *extra], capture_output=True, text=True, env=env, timeout=120)
            for extra in ([], ["--json"])]
    assert runs[0].returncode == 0, runs[0].stderr
    # a password in the URL is refused without echoing it
    leaky = remote.url.replace("://", f"://user:{SECRET}@", 1)
    bad = subprocess.run([*CLI, "--catalog", str(cat), "scan", leaky], capture_output=True, text=True, env=env,
                         timeout=60)
    assert bad.returncode == 2 and "password in the URL is refused" in bad.stderr
    runs.append(bad)
    if remote.kind != "s3":
        wrong = {**env, f"MEDIAIDX_{remote.kind.upper()}_PASSWORD": "x" + SECRET}
        runs.append(subprocess.run([*CLI, "-v", "--catalog", str(cat), "scan", remote.url], capture_output=True,
                                   text=True, env=wrong, timeout=120))
        assert runs[-1].returncode == 1 and "access denied" in runs[-1].stderr
    for r in runs:
        assert SECRET not in r.stdout and SECRET not in r.stderr
    for f in tmp_path.rglob("*"):
        if f.is_file() and "server" not in f.parts:
            assert SECRET.encode() not in f.read_bytes(), f


@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_s3_listing_lost_between_pages_keeps_the_folders_already_listed(remote: Remote, clips: dict[str, bytes],
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.storage.s3 import S3Storage

    monkeypatch.setattr(S3Storage, "PAGE", 2)  # three pages for six keys: folders complete page by page
    for i in range(6):
        remote.put(f"f{i}/clip{i}.mp4", clips[f"c{i}"])
    seen: list[str] = []

    def progress(ev) -> None:
        if ev.phase == "walk" and ev.path:
            seen.append(ev.path)
            if len(seen) == 2:
                remote.stop()  # before the next page is asked for

    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(remote.url, probe=False, progress=progress)
        assert not s.complete and s.counts["missing"] == 0
        assert any("connection lost" in i.reason for i in s.issues), s.issues
        first = {a.name for a in ix.search(None, status=None, limit=100)}
        assert {"clip0.mp4"} <= first and len(first) < 6
        remote.start()
        s = ix.scan(remote.url, probe=False)
        assert s.complete and s.counts["added"] == 6 - len(first) and s.counts["unchanged"] == len(first)


def test_s3_wrong_credentials_are_one_line_without_the_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto checks signatures once told to (INITIAL_NO_AUTH_ACTION_COUNT=0): every key is then unknown."""
    from remote_servers import free_port, wait_port

    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        pytest.skip("moto_server is not installed next to this Python (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        wait_port(port)
        monkeypatch.setenv("MEDIAIDX_S3_ACCESS_KEY_ID", "AKIDWRONG")
        monkeypatch.setenv("MEDIAIDX_S3_SECRET_ACCESS_KEY", SECRET)
        monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(tmp_path / "none.toml"))
        url = f"s3+http://127.0.0.1:{port}/footage/proj"
        with MediaIndexer(tmp_path / "cat.sqlite") as ix, pytest.raises(RootUnavailableError) as e:
            ix.scan(url)
        msg = str(e.value)
        assert msg.startswith(url + ": access denied") and "\n" not in msg and SECRET not in msg
    finally:
        proc.terminate()
        proc.wait(10)
