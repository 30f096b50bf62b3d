"""Which storage errors are the root's and which are one file's.

A root that cannot be used (SSH works but no SFTP session opens, a known_hosts line or ~/.ssh/config value
asyncssh cannot parse, a host name typo, an S3 endpoint botocore refuses) is one line naming the root, and a
scan of several roots goes on with the others; these escaped as ValueError tracebacks and aborted every root.
One file the server cannot read (SFTP answers its reads with a failure status: OpenSSH's EIO on a bad sector;
SMB with an error status: a byte-range lock another client holds, a bad sector) fails that file only; it read
as "the storage stopped answering", stopping the root's scan on every scan. A status that is the server's
passing state (out of resources or handles, a garbled message) is not the file's: marked 'failed', the file
would never be read again by a plain scan; it is left for the next scan. Real servers (asyncssh's SFTP
server, Samba's smbd) and the real ``mediaidx`` command, except for SMB statuses Samba cannot be made to send.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest
from remote_servers import SECRET, SFTPRemote, SMBRemote, smbd_missing, use_server

from bridge import MediaIndexer, synth
from bridge.storage.remote import RemoteStorage

NAMES = ["a_first.mp4", "b_bad.mp4", "c_after.mp4", "d_after.mp4"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    d = tmp_path_factory.mktemp("clips")
    return [synth.make_video(d / f"c{i}.mp4", frames=6 + 2 * i, width=32, height=24).read_bytes()
            for i in range(len(NAMES))]


@pytest.fixture
def sftp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SFTPRemote]:
    r = SFTPRemote(tmp_path / "server")
    use_server(r, monkeypatch, tmp_path)
    monkeypatch.setattr(RemoteStorage, "BACKOFF", (0.05, 0.05, 0.05))
    try:
        yield r
    finally:
        r.shutdown()


@pytest.fixture
def local_root(tmp_path: Path, clips: list[bytes]) -> Path:
    """The second root of a two-root scan: it must be scanned whatever the broken one does."""
    d = tmp_path / "local"
    d.mkdir()
    (d / "here.mp4").write_bytes(clips[0])
    return d


def _cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge.cli.app", "--catalog", str(tmp_path / "cat.sqlite"),
                           "--cache-dir", str(tmp_path / "cache"), "scan", "--jobs", "1", *args],
                          capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})})


def _names(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "cat.sqlite") as db:
        names = {bytes(n).decode() for (n,) in db.execute("SELECT name FROM assets")}
    db.close()
    return names


def _broken_root_is_one_line(tmp_path: Path, url: str, local: Path, reason: str,
                             env: dict[str, str] | None = None) -> None:
    """Alone: exit 1 and one line naming the root. Beside a good root: that root is still scanned and the
    broken one is an issue naming it. Never a traceback."""
    alone = _cli(tmp_path, url, env=env)
    assert "Traceback" not in alone.stderr + alone.stdout, alone.stderr[-3000:]
    assert alone.returncode == 1, (alone.returncode, alone.stdout, alone.stderr)
    lines = [ln for ln in alone.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and url in lines[0] and reason in lines[0], alone.stderr

    both = _cli(tmp_path, url, str(local), env=env)
    assert "Traceback" not in both.stderr + both.stdout, both.stderr[-3000:]
    out = both.stdout + both.stderr
    assert url in out and reason in out, out
    assert "here.mp4" in _names(tmp_path), out  # the other root was scanned


def test_ssh_without_an_sftp_session_is_a_root_error(sftp: SFTPRemote, tmp_path: Path, local_root: Path) -> None:
    sftp.put("x.mp4", b"\0" * 100)
    sftp.stop()
    sftp.sftp_subsystem = False  # sshd without 'Subsystem sftp', or its MaxSessions used up
    sftp.start()
    _broken_root_is_one_line(tmp_path, sftp.url, local_root, "opened no SFTP session")


def test_a_malformed_known_hosts_line_is_a_root_error(sftp: SFTPRemote, tmp_path: Path, local_root: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "known_hosts_bad"
    bad.write_text("nas.local\n")  # a host without a key: asyncssh's ValueError "Invalid known hosts entry"
    monkeypatch.setenv("MEDIAIDX_SFTP_KNOWN_HOSTS", str(bad))
    _broken_root_is_one_line(tmp_path, sftp.url, local_root, "Invalid known hosts entry")


def test_a_bad_ssh_config_value_is_a_root_error(sftp: SFTPRemote, tmp_path: Path, local_root: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host *\n  Port notanumber\n")  # asyncssh's ConfigParseError
    _broken_root_is_one_line(tmp_path, sftp.url, local_root, "Invalid Port", env={"HOME": str(home)})


@pytest.mark.parametrize("url, says", [
    ("sftp://nas..local/x", "'nas..local' is not a valid server name"),
    ("smb://nas..local/share", "'nas..local' is not a valid server name"),
    ("s3+http://my_minio:9000/bucket/p", "'my_minio' is not a host name the S3 client takes"),
])
def test_a_host_name_no_client_can_use_is_refused_before_the_scan(
        tmp_path: Path, local_root: Path, monkeypatch: pytest.MonkeyPatch, url: str, says: str) -> None:
    """A typo in the URL is a usage error (exit 2, one line) before anything is read or written, as for the
    other URL mistakes; it was a UnicodeError or botocore ValueError traceback after the scan began."""
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(tmp_path / "no-storage.toml"))
    for k in ("MEDIAIDX_SFTP_PASSWORD", "MEDIAIDX_SMB_PASSWORD", "MEDIAIDX_S3_SECRET_ACCESS_KEY",
              "MEDIAIDX_SFTP_USER", "MEDIAIDX_SMB_USER", "MEDIAIDX_S3_ACCESS_KEY_ID"):
        monkeypatch.setenv(k, "x")
    run = _cli(tmp_path, url, str(local_root))
    assert "Traceback" not in run.stderr + run.stdout, run.stderr[-3000:]
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and says in lines[0], run.stderr
    assert not (tmp_path / "cat.sqlite").exists() or not _names(tmp_path)


@pytest.mark.parametrize("kind, host, endpoint, says", [
    ("sftp", "nas..local", None, "label empty or too long"),        # the idna codec's UnicodeError
])
def test_a_host_the_library_refuses_is_a_root_error_below_the_url_check(
        kind: str, host: str, endpoint: str | None, says: str) -> None:
    """The storage layer itself (a root built without parse_url's host check):
    the library's ValueError is one 'cannot use this root' line, not a traceback out of the scan."""
    from bridge.errors import RootUnavailableError
    from bridge.storage.credentials import Credentials, RemoteURL
    from bridge.storage.s3 import S3Storage
    from bridge.storage.sftp import SFTPStorage

    cls = {"sftp": SFTPStorage, "s3": S3Storage}[kind]
    opts = ({"username": "u", "password": "x"} if kind == "sftp"
            else {"access_key_id": "x", "secret_access_key": "y"})
    st = cls(RemoteURL(kind, host, "p", endpoint=endpoint), Credentials(opts))
    st.BACKOFF = (0.01, 0.01, 0.01)
    with pytest.raises(RootUnavailableError, match=says) as got:
        st.check()
    assert str(got.value).startswith(st.url) and "\n" not in str(got.value)


@pytest.mark.parametrize("how", ["url", "stored", "option", "config"])
def test_an_s3_endpoint_botocore_refuses_never_reaches_the_storage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """botocore's "Invalid endpoint" ValueError is not taken as the storage's (S3Storage.io_errors has no
    ValueError: ours must fail loudly), so every way an endpoint reaches a root is checked first, with a
    one-line usage error: the URL, a stored root's URL, --endpoint-url and storage.toml's endpoint_url."""
    from bridge.errors import UsageError
    from bridge.storage import open_storage

    conf = tmp_path / "storage.toml"
    conf.write_text('["s3://bucket"]\nendpoint_url = "http://my_minio:9000"\n')
    os.chmod(conf, 0o600)
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(conf))
    with pytest.raises(UsageError, match="my_minio"):
        if how == "url":
            open_storage("s3+http://my_minio:9000/bucket/p")
        elif how == "stored":
            open_storage("s3+http://MY_MINIO:9000/bucket/p")
        elif how == "option":
            open_storage("s3://bucket/p", endpoint_url="http://my_minio:9000")
        else:
            open_storage("s3://bucket/p").check()


@pytest.mark.parametrize("jobs", [1, 2])
def test_one_file_the_sftp_server_cannot_read_fails_alone(
        sftp: SFTPRemote, clips: list[bytes], tmp_path: Path, jobs: int) -> None:
    for name, data in zip(NAMES, clips, strict=True):
        sftp.put(f"f/{name}", data, mtime=1_700_000_000)
    sftp.put("g/e_later.mp4", clips[1], mtime=1_700_000_000)  # a folder walked after the failure
    sftp.unreadable.add("b_bad.mp4")
    cat = tmp_path / "cat.sqlite"
    # the first scan, and one that reads the failed file again (an unchanged failed file is not re-read by a
    # plain scan): neither stops at the bad file
    for retry in (False, True):
        with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix:
            s = ix.scan(sftp.url, jobs=jobs, retry_failed=retry)
            rows = {a.name: a for a in ix.search(None, status=None, limit=100)}
        assert s.complete, s.issues
        assert not any("stopped answering" in i.reason for i in s.issues), s.issues
        assert set(rows) == {*NAMES, "e_later.mp4"}
        assert rows["b_bad.mp4"].status == "failed"
        assert all(a.status == "ok" for n, a in rows.items() if n != "b_bad.mp4"), rows
    with sqlite3.connect(cat) as db:
        assert [st for (st,) in db.execute("SELECT status FROM scans ORDER BY id")] == ["done", "done"]
        (reason,) = db.execute("SELECT error FROM assets WHERE name = ?", (b"b_bad.mp4",)).fetchone()
    db.close()
    assert "cannot read" in reason and "Input/output error" in reason, reason


@pytest.mark.parametrize("op, error", [
    ("open", lambda: asyncssh.SFTPFailure("Failure")),         # OpenSSH's answer to EIO, ENXIO... (or EMFILE)
    ("read", lambda: asyncssh.SFTPBadMessage("Bad message")),  # its answer to EINVAL, ENAMETOOLONG
])
def test_an_sftp_status_about_one_file_fails_that_file_and_the_scan_completes(
        sftp: SFTPRemote, clips: list[bytes], tmp_path: Path, op: str, error: Callable[[], Exception]) -> None:
    """A status the server keeps sending for one file must not stop the root: left as the server's, every scan
    stopped at that file and the files after it were never indexed. The file fails with the server's words,
    the scan completes, and --retry-failed reads it again once the server can."""
    for name, data in zip(NAMES, clips, strict=True):
        sftp.put(f"f/{name}", data, mtime=1_700_000_000)
    getattr(sftp, f"{op}_errors")["b_bad.mp4"] = error
    cat = tmp_path / "cat.sqlite"
    with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(sftp.url, jobs=1)
        rows = {a.name: a for a in ix.search(None, status=None, limit=100)}
    assert s.complete, s.issues
    assert rows["b_bad.mp4"].status == "failed" and "the server replied" in (rows["b_bad.mp4"].error or ""), rows
    assert all(a.status == "ok" for n, a in rows.items() if n != "b_bad.mp4"), rows
    getattr(sftp, f"{op}_errors").clear()
    with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(sftp.url, jobs=1, retry_failed=True)
        rows = {a.name: a for a in ix.search(None, status=None, limit=100)}
    assert s.complete, s.issues
    assert set(rows) == set(NAMES) and all(a.status == "ok" for a in rows.values()), rows


def test_the_cli_scan_over_an_unreadable_sftp_file_completes(
        sftp: SFTPRemote, clips: list[bytes], tmp_path: Path) -> None:
    for name, data in zip(NAMES, clips, strict=True):
        sftp.put(name, data, mtime=1_700_000_000)
    sftp.unreadable.add("b_bad.mp4")
    run = _cli(tmp_path, sftp.url)
    assert "Traceback" not in run.stderr + run.stdout, run.stderr[-3000:]
    assert "stopped answering" not in run.stdout + run.stderr, run.stdout
    assert "b_bad.mp4" in run.stdout + run.stderr and "Input/output error" in run.stdout + run.stderr
    assert _names(tmp_path) == set(NAMES)


@pytest.fixture
def smb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SMBRemote]:
    reason = smbd_missing()
    if reason:
        pytest.skip(reason)
    r = SMBRemote(tmp_path / "server")
    use_server(r, monkeypatch, tmp_path)
    monkeypatch.setattr(RemoteStorage, "BACKOFF", (0.05, 0.05, 0.05))
    try:
        yield r
    finally:
        r.stop()


def _lock_whole_file(smb: SMBRemote, rel: str) -> object:
    """Another SMB client (a program on another machine) holds an exclusive byte-range lock on the file:
    Samba answers every read of it with STATUS_FILE_LOCK_CONFLICT, a status smbclient does not map."""
    import uuid

    from smbprotocol.connection import Connection
    from smbprotocol.open import (
        CreateDisposition,
        CreateOptions,
        FileAttributes,
        FilePipePrinterAccessMask,
        ImpersonationLevel,
        LockFlags,
        Open,
        ShareAccess,
        SMB2LockElement,
    )
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    conn = Connection(uuid.uuid4(), "127.0.0.1", smb.port)
    conn.connect()
    session = Session(conn, smb.env["MEDIAIDX_SMB_USER"], SECRET, auth_protocol="ntlm")
    session.connect()
    tree = TreeConnect(session, r"\\127.0.0.1\media")
    tree.connect()
    f = Open(tree, "proj\\" + rel.replace("/", "\\"))
    f.create(ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.GENERIC_READ,
             FileAttributes.FILE_ATTRIBUTE_NORMAL,
             ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE,
             CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE)
    lock = SMB2LockElement()
    lock["offset"], lock["length"] = 0, 1 << 40
    lock["flags"] = LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK | LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY
    f.lock([lock])
    return conn


def test_one_file_whose_smb_reads_fail_fails_alone(smb: SMBRemote, clips: list[bytes], tmp_path: Path) -> None:
    for name, data in zip(NAMES, clips, strict=True):
        smb.put(f"f/{name}", data, mtime=1_700_000_000)
    holder = _lock_whole_file(smb, "f/b_bad.mp4")
    try:
        with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
            s = ix.scan(smb.url, jobs=1)
            rows = {a.name: a for a in ix.search(None, status=None, limit=100)}
    finally:
        holder.disconnect()  # type: ignore[attr-defined]
    assert s.complete and not any("stopped answering" in i.reason for i in s.issues), s.issues
    assert set(rows) == set(NAMES) and rows["b_bad.mp4"].status == "failed"
    assert all(a.status == "ok" for n, a in rows.items() if n != "b_bad.mp4"), rows
    (issue,) = [i.reason for i in s.issues if i.path.endswith("b_bad.mp4")]
    assert "locked by another program" in issue, s.issues


def test_a_valueerror_of_ours_in_the_s3_walk_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug of ours (a ValueError from int() or a decode) is raised out of the walk, not reported as a
    folder the storage could not list."""
    from bridge.storage.credentials import Credentials, parse_url
    from bridge.storage.s3 import S3Storage

    st = S3Storage(parse_url("s3+http://127.0.0.1:9/bucket/p"), Credentials({"access_key_id": "x",
                                                                           "secret_access_key": "y"}))

    def buggy(*_a: object, **_k: object) -> dict[str, object]:
        raise ValueError("invalid literal for int() with base 10: 'x'")

    monkeypatch.setattr(st, "_list_page", buggy)
    with pytest.raises(ValueError, match="invalid literal"):
        list(st.walk(lambda _n: True))


def _smb_status(status: int) -> Exception:
    """smbprotocol's exception for a reply with this status, as its connection builds it."""
    from smbprotocol.exceptions import SMB2ErrorResponse, SMBResponseException
    from smbprotocol.header import SMB2HeaderResponse

    header = SMB2HeaderResponse()
    header["status"] = status
    header["data"] = SMB2ErrorResponse().pack()
    return SMBResponseException(header)


class _FailingRead:
    """An open SMB file whose reads the server answers with one status (Samba cannot be made to answer with
    most of these on demand; the lock conflict runs against the real server above)."""

    def __init__(self, status: int) -> None:
        self.status = status

    def read(self, n: int) -> bytes:
        raise _smb_status(self.status)


@pytest.mark.parametrize("status", [0xC000009A, 0xC0000205, 0xC00000B5, 0xC00000D0, 0xC0000203])
def test_a_passing_smb_server_status_on_a_read_stays_the_servers(status: int) -> None:
    """STATUS_INSUFFICIENT_RESOURCES, INSUFF_SERVER_RESOURCES, IO_TIMEOUT, REQUEST_NOT_ACCEPTED, a lost session:
    not this file's OSError (which would mark it 'failed' until --retry-failed) but the library's error, which
    the scan takes as the server's (the next scan reads the file again)."""
    from smbprotocol.exceptions import SMBResponseException

    from bridge.storage.credentials import Credentials, parse_url
    from bridge.storage.smb import SMBStorage, _SMBFile

    with pytest.raises(SMBResponseException) as got:
        _SMBFile(_FailingRead(status)).read(10)
    assert not isinstance(got.value, OSError)
    assert isinstance(got.value, SMBStorage(parse_url("smb://nas/share"), Credentials()).io_errors())


@pytest.mark.parametrize("status, error", [(0xC0000054, OSError), (0xC0000022, PermissionError),
                                           (0xC000009C, OSError), (0xC0000034, FileNotFoundError),
                                           # a status we do not name (STATUS_FILE_CORRUPT_ERROR): the file's too,
                                           # else every scan of the root would stop at this file
                                           (0xC0000102, OSError)])
def test_an_smb_read_status_about_the_file_is_its_oserror(status: int, error: type[OSError]) -> None:
    from bridge.storage.remote import _plain
    from bridge.storage.smb import _SMBFile

    with pytest.raises(OSError) as got:
        _SMBFile(_FailingRead(status)).read(10)
    assert isinstance(_plain(got.value), error) and "the server replied" in str(got.value)
