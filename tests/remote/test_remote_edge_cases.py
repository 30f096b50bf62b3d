"""Edge cases of remote roots on real servers on loopback: odd object keys and names, objects replaced while
read, missing host-key files, servers that accept connections but never answer."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from remote_servers import SECRET, Remote, SFTPRemote

from bridge import MediaIndexer, synth
from bridge.errors import RootUnavailableError
from bridge.storage import open_storage


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return synth.make_video(tmp_path_factory.mktemp("clip") / "c.mp4", frames=8, width=64, height=48).read_bytes()


def names(ix: MediaIndexer) -> dict[str, object]:
    return {a.path: a for a in ix.search(None, status=None, limit=100)}


@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_s3_keys_with_empty_dot_or_dotdot_components_are_skipped_with_an_issue(remote: Remote, clip: bytes,
                                                                               tmp_path: Path) -> None:
    # "proj//lead.mp4" next to "proj/lead.mp4" used to be catalogued under the same path and crash the scan
    # (UNIQUE constraint failed); "../up.mp4" would name a file outside the root.
    for rel in ("lead.mp4", "/lead.mp4", "dd//d.mp4", "../up.mp4", "./dot.mp4", "ok/a b#1%.mp4", "fold/"):
        remote.put(rel, clip)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(remote.url, jobs=1)
        assert s.complete and s.counts["added"] == 2 and s.failed == 0, s.issues
        assert set(names(ix)) == {remote.url + "/lead.mp4", remote.url + "/ok/a b#1%.mp4"}
        skipped = {i.path for i in s.issues if "key skipped" in i.reason}
        assert skipped == {remote.url + p for p in ("//lead.mp4", "/dd//d.mp4", "/../up.mp4", "/./dot.mp4")}
        s = ix.scan(remote.url, jobs=1)
        assert s.complete and s.counts["unchanged"] == 2 and s.counts["missing"] == 0


@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_s3_object_replaced_while_read_fails_instead_of_mixing_versions(remote: Remote, tmp_path: Path) -> None:
    old = b"A" * 300_000
    new = b"B" * 300_000  # same size: only the ETag tells them apart
    remote.put("x.mov", old)
    storage = open_storage(remote.url)
    with storage.open(b"x.mov") as fh:
        assert fh.read(10) == b"A" * 10
        remote.put("x.mov", new)
        fh.seek(-10, os.SEEK_END)
        with pytest.raises(OSError, match="changed while it was read"):
            fh.read(10)
    # opened with the listed size, the object since replaced by one of another size
    with storage.open(b"x.mov", size=len(old) + 1) as fh, pytest.raises(OSError, match="changed"):
        fh.read(10)
    with storage.open(b"x.mov") as fh:  # a fresh open reads the new version whole
        assert fh.read() == new


@pytest.mark.parametrize("remote", ["sftp"], indirect=True)
def test_sftp_name_that_is_not_utf8_is_listed_and_read(remote: SFTPRemote, clip: bytes, tmp_path: Path) -> None:
    # asyncssh could not decode such a name: the whole listing failed and the scan crashed
    folder = os.fsencode(remote.share / "proj")
    os.makedirs(folder + b"/dir\xe9")
    Path(os.fsdecode(folder + b"/dir\xe9/bad\xff.mp4")).write_bytes(clip)
    remote.put("good.mp4", clip)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(remote.url, jobs=1)
        assert s.complete and s.counts["added"] == 2 and s.failed == 0, s.issues
        assets = names(ix)
        bad = assets[remote.url + "/dir\\xe9/bad\\xff.mp4"]
        assert bad.status == "ok" and bad.kind == "video" and bad.width == 64  # type: ignore[attr-defined]
        assert ix.native_path(bad.id) == os.fsencode(remote.url) + b"/dir\xe9/bad\xff.mp4"  # type: ignore[attr-defined]
    with open_storage(remote.url).open(b"dir\xe9/bad\xff.mp4") as fh:
        assert fh.read() == clip


@pytest.mark.parametrize("remote", ["sftp"], indirect=True)
def test_sftp_without_a_known_hosts_or_key_file_says_so(remote: Remote, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    remote.put("x.mp4", b"\0" * 10)
    missing = tmp_path / "nowhere" / "known_hosts"
    monkeypatch.setenv("MEDIAIDX_SFTP_KNOWN_HOSTS", str(missing))
    with MediaIndexer(tmp_path / "cat.sqlite") as ix, pytest.raises(RootUnavailableError) as e:
        ix.scan(remote.url)
    msg = str(e.value)
    assert msg.startswith(remote.url + ": ") and "\n" not in msg and SECRET not in msg
    assert str(missing) in msg and "host key" in msg and "no such folder" not in msg

    monkeypatch.setenv("MEDIAIDX_SFTP_KNOWN_HOSTS", remote.env["MEDIAIDX_SFTP_KNOWN_HOSTS"])
    monkeypatch.setenv("MEDIAIDX_SFTP_KEY_FILE", str(tmp_path / "id_ed25519"))  # not there either
    with MediaIndexer(tmp_path / "cat.sqlite") as ix, pytest.raises(RootUnavailableError) as e:
        ix.scan(remote.url)
    msg = str(e.value)
    assert msg.startswith(remote.url + ": ") and str(tmp_path / "id_ed25519") in msg, msg
    assert "no such folder" not in msg and SECRET not in msg


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP server that accepts connections and never says a word (a hung NAS, a stopped process)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            conns.append(c)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield srv.getsockname()[1], conns
    finally:
        srv.close()
        for c in conns:
            c.close()


@pytest.mark.parametrize("kind", ["s3", "smb", "sftp"])
def test_a_server_that_never_answers_is_given_up_on_after_the_retries(
        kind: str, silent_server: tuple[int, list[socket.socket]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.storage.remote import RemoteStorage
    from bridge.storage.s3 import S3Storage
    from bridge.storage.sftp import SFTPStorage
    from bridge.storage.smb import SMBStorage

    port, conns = silent_server
    monkeypatch.setattr(RemoteStorage, "BACKOFF", (0.05, 0.05, 0.05))
    monkeypatch.setattr(S3Storage, "READ_TIMEOUT", 1, raising=False)
    monkeypatch.setattr(SMBStorage, "CONNECT_TIMEOUT", 1, raising=False)
    monkeypatch.setattr(SFTPStorage, "CONNECT_TIMEOUT", 1, raising=False)
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(tmp_path / "none.toml"))
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    for k, v in {"MEDIAIDX_S3_ACCESS_KEY_ID": "AKID", "MEDIAIDX_S3_SECRET_ACCESS_KEY": SECRET,
                 "MEDIAIDX_SMB_USER": "u", "MEDIAIDX_SMB_PASSWORD": SECRET, "MEDIAIDX_SFTP_USER": "u",
                 "MEDIAIDX_SFTP_PASSWORD": SECRET, "MEDIAIDX_SFTP_KNOWN_HOSTS": str(known_hosts)}.items():
        monkeypatch.setenv(k, v)
    url = {"s3": f"s3+http://127.0.0.1:{port}/bucket/proj", "smb": f"smb://127.0.0.1:{port}/share/proj",
           "sftp": f"sftp://127.0.0.1:{port}/proj"}[kind]
    t = time.monotonic()
    with MediaIndexer(tmp_path / "cat.sqlite") as ix, pytest.raises(RootUnavailableError) as e:
        ix.scan(url)
    took = time.monotonic() - t
    msg = str(e.value)
    assert msg.startswith(url + ": cannot connect") and "gave up after 3 tries" in msg, msg
    assert "\n" not in msg and SECRET not in msg
    # three tries of ours, one request each (the libraries' own retry loops are off), each ending on its
    # timeout: not twice that, and not forever
    assert len(conns) == 3, len(conns)
    assert took < 20, took


def stall(remote: Remote, on: bool) -> None:
    """The server keeps its connections and takes requests, but answers none (a hung NAS)."""
    if isinstance(remote, SFTPRemote):
        (remote.stall.set if on else remote.stall.clear)()
    else:
        remote.freeze(on)  # type: ignore[attr-defined]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("remote", ["sftp", "smb"], indirect=True)
def test_a_server_that_stops_answering_mid_scan_stops_the_scan_instead_of_hanging(
        remote: Remote, clip: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.storage.remote import RemoteStorage
    from bridge.storage.sftp import SFTPStorage
    from bridge.storage.smb import SMBStorage

    # sshfs waited forever for the answer to a read; smbprotocol for 20 minutes
    monkeypatch.setattr(RemoteStorage, "BACKOFF", (0.05, 0.05, 0.05))
    monkeypatch.setattr(SFTPStorage, "TIMEOUT", 1, raising=False)
    monkeypatch.setattr(SMBStorage, "RECEIVE_TIMEOUT", 1, raising=False)
    monkeypatch.setattr(SMBStorage, "CONNECT_TIMEOUT", 1, raising=False)
    for i in range(4):
        remote.put(f"f{i}/clip{i}.mp4", clip[:-i] if i else clip)
    stalled: list[float] = []

    def progress(ev) -> None:
        if ev.phase == "work" and ev.work_done >= 1 and not stalled:
            stalled.append(time.monotonic())
            stall(remote, True)

    try:
        with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
            s = ix.scan(remote.url, jobs=1, progress=progress)
            assert stalled and time.monotonic() - stalled[0] < 30
            assert not s.complete and s.counts["missing"] == 0
            text = " ".join(i.reason for i in s.issues)
            assert "stopped answering" in text or "connection lost" in text, s.issues
            first = {a.name for a in ix.search(None, status=None, limit=100)}
            assert 1 <= len(first) < 4
            stall(remote, False)
            s = ix.scan(remote.url, jobs=1)
            assert s.complete and s.counts["added"] == 4 - len(first) and s.counts["missing"] == 0, s.issues
    finally:
        stall(remote, False)


def test_probe_takes_the_urls_the_catalog_prints_for_odd_names(remote: Remote, clip: bytes, tmp_path: Path) -> None:
    # '#' was taken for a fragment ("not allowed in a root URL") and '%25' decoded to '%' (no such file)
    remote.put("my dir/take #2/a+b 50%25 100%.mp4", clip)
    remote.put("my dir/x.mp4", clip)
    root = remote.url + "/my dir"
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(root, jobs=1)
        assert s.complete and s.counts["added"] == 2, s.issues
        paths = sorted(names(ix))
        assert paths == [remote.url + "/my%20dir/take #2/a+b 50%25 100%.mp4", remote.url + "/my%20dir/x.mp4"]
        for p in paths:
            assert ix.probe(p)["kind"] == "video", p
        assert ix.probe(remote.url + "/my dir/x.mp4")["kind"] == "video"  # as typed
        with pytest.raises(FileNotFoundError):
            ix.probe(remote.url + "/my dir/take #2/nope.mp4")


@pytest.mark.parametrize("url", [
    "s3+http://127.0.0.1:9/footage/%2E%2E/other/a.mp4", "sftp://127.0.0.1:9/srv/a/%2e%2E/etc/a.mp4",
    "smb://127.0.0.1/share/%2E/a.mp4", "sftp://127.0.0.1:9/srv/a%2F..%2Fb/a.mp4",
])
def test_probe_refuses_dot_components_that_only_appear_once_decoded(url: str) -> None:
    # the '.'/'..' check ran on the raw components, and the leading folders were %-decoded after it
    from bridge.errors import UsageError
    from bridge.storage.remote import probe_url

    with pytest.raises(UsageError, match="empty components are not allowed"):
        probe_url(url)


def test_an_endpoint_url_with_credentials_in_storage_toml_is_refused_without_echoing_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.errors import UsageError

    cfg = tmp_path / "storage.toml"
    cfg.write_text(f'["s3://footage"]\nendpoint_url = "http://AKID:{SECRET}@127.0.0.1:9"\n')
    cfg.chmod(0o600)
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(cfg))
    monkeypatch.setenv("MEDIAIDX_S3_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("MEDIAIDX_S3_SECRET_ACCESS_KEY", "other-secret")
    with MediaIndexer(tmp_path / "cat.sqlite") as ix, pytest.raises((UsageError, RootUnavailableError)) as e:
        ix.scan("s3://footage/proj")
    msg = str(e.value)
    assert SECRET not in msg and "\n" not in msg
    assert "no credentials in the endpoint URL" in msg


@pytest.mark.parametrize("url", [
    "smb://alice:{pw}@nas/share", "sftp://bob:{pw}@render01/srv", "s3+http://key:{pw}@minio:9000/footage",
])
@pytest.mark.parametrize("pw", ["p@ss-Word9", "pa/ss-Word9", "pa#ss-Word9", "pa?ss-Word9", "12/ss-Word9", "p@ss/ss-Word9"])
def test_a_password_with_url_delimiters_is_not_echoed_in_the_refusal(url: str, pw: str) -> None:
    # '@' left "ss-Word9" in the message; '/', '?' or '#' made urllib take the start of it for a port and the
    # whole password was echoed (twice: in the URL and in urllib's own text)
    from bridge.errors import UsageError

    with pytest.raises(UsageError) as e:
        open_storage(url.format(pw=pw)).check()
    msg = str(e.value)
    assert "ss-Word9" not in msg and "\n" not in msg, msg


class CutProxy:
    """A TCP proxy to a server on loopback; while ``cuts`` > 0, each response is cut after ``after`` bytes and
    the connection dropped (a flaky link, a load balancer restarting)."""

    def __init__(self, port: int, after: int = 20_000) -> None:
        self.target, self.after, self.cuts, self.cut_done = port, after, 0, 0
        self.on_cut: Callable[[], None] | None = None  # runs after a cut, before the client can retry
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(32)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(c,), daemon=True).start()

    def _pipe(self, c: socket.socket) -> None:
        u = socket.create_connection(("127.0.0.1", self.target))

        def up() -> None:
            try:
                while b := c.recv(65536):
                    u.sendall(b)
            except OSError:
                pass

        threading.Thread(target=up, daemon=True).start()
        sent = 0
        try:
            while b := u.recv(65536):
                if self.cuts > 0 and sent + len(b) > self.after:
                    c.sendall(b[:self.after - sent])
                    self.cuts -= 1
                    self.cut_done += 1
                    if self.on_cut is not None:
                        self.on_cut()
                    break
                c.sendall(b)
                sent += len(b)
        except OSError:
            pass
        for s in (c, u):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.srv.close()


@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_s3_read_cut_mid_response_is_resumed_and_never_mixes_versions(remote: Remote, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.storage.remote import RemoteStorage

    monkeypatch.setattr(RemoteStorage, "BACKOFF", (0.05, 0.05, 0.05))
    data = os.urandom(3_000_000)
    remote.put("big.mov", data)
    proxy = CutProxy(remote.port)  # type: ignore[attr-defined]
    try:
        storage = open_storage(remote.url.replace(f":{remote.port}/", f":{proxy.port}/"))  # type: ignore[attr-defined]
        with storage.open(b"big.mov") as fh:
            proxy.cuts = 1
            assert fh.read(1_000_000) == data[:1_000_000] and proxy.cut_done == 1  # retried: exact bytes
            # the link drops, and the object is replaced before the retry: the retry must not read the new one
            proxy.cuts = 1
            proxy.on_cut = lambda: remote.put("big.mov", os.urandom(3_000_000))
            fh.seek(2_000_000)
            with pytest.raises(OSError, match="changed while it was read"):
                fh.read(500_000)
            assert proxy.cut_done == 2
    finally:
        proxy.close()
