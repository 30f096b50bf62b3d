"""Real storage servers on loopback for the tests: S3 (moto's server mode), SFTP (asyncssh in this
process) and SMB (Samba's smbd on a high port, skipped with a reason where smbd is not installed).

Each backend is wrapped in a ``Remote`` with the same small API (put, delete, rename, stop, start), so one
set of scenario tests runs against all three.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SECRET = "pw-" + uuid.uuid4().hex[:12]  # a password no output, log or catalog may ever contain
USER = "mediaidx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, up: bool = True, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not come {'up' if up else 'down'}")


class Remote:
    """A storage server with a root URL and a way to change what it serves."""

    kind = ""
    url = ""
    env: dict[str, str]

    def put(self, rel: str, data: bytes, mtime: float | None = None) -> None:
        raise NotImplementedError

    def delete(self, rel: str) -> None:
        raise NotImplementedError

    def rename(self, old: str, new: str) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError


# -- S3: moto ---------------------------------------------------------------------------------------------

class S3Remote(Remote):
    kind = "s3"

    def __init__(self, tmp: Path) -> None:
        import boto3

        self.port = free_port()
        self.server: Any = None
        self.start()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = "footage-" + uuid.uuid4().hex[:8]
        self.client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="x",
                                   aws_secret_access_key="y", region_name="us-east-1")
        self.client.create_bucket(Bucket=self.bucket)
        self.url = f"s3+http://127.0.0.1:{self.port}/{self.bucket}/proj"
        self.env = {"MEDIAIDX_S3_ACCESS_KEY_ID": "AKIDMEDIAIDX", "MEDIAIDX_S3_SECRET_ACCESS_KEY": SECRET}

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        wait_port(self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def put(self, rel: str, data: bytes, mtime: float | None = None) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"proj/{rel}", Body=data)

    def delete(self, rel: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=f"proj/{rel}")

    def rename(self, old: str, new: str) -> None:
        self.client.copy_object(Bucket=self.bucket, Key=f"proj/{new}",
                                CopySource={"Bucket": self.bucket, "Key": f"proj/{old}"})
        self.delete(old)


# -- a folder-backed server (SFTP, SMB): changes are made in the folder it serves --------------------------

class FolderRemote(Remote):
    def __init__(self, tmp: Path) -> None:
        self.share = tmp / "share"
        (self.share / "proj").mkdir(parents=True)

    def put(self, rel: str, data: bytes, mtime: float | None = None) -> None:
        p = self.share / "proj" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        if mtime is not None:
            os.utime(p, (mtime, mtime))

    def delete(self, rel: str) -> None:
        (self.share / "proj" / rel).unlink()

    def rename(self, old: str, new: str) -> None:
        dest = self.share / "proj" / new
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.share / "proj" / old, dest)


class SFTPRemote(FolderRemote):
    """asyncssh's SFTP server on its own event loop thread, chrooted to the share folder."""

    kind = "sftp"

    def __init__(self, tmp: Path) -> None:
        import asyncssh

        super().__init__(tmp)
        self.port = free_port()
        self.key = asyncssh.generate_private_key("ssh-ed25519")
        self.known_hosts = tmp / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {self.key.export_public_key().decode().strip()}\n")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.acceptor: Any = None
        self.conns: list[Any] = []
        self.stall = threading.Event()  # set: the server takes requests and never answers (a hung NAS)
        self.sftp_subsystem = True      # False (then stop, start): SSH logins work, no SFTP session opens
        self.unreadable: set[str] = set()  # file names whose reads the server answers with SFTPFailure (EIO)
        # file name -> a factory of the SFTP status error the server answers its opens / reads with
        # (SFTPFailure for an open: OpenSSH out of handles or memory; SFTPBadMessage: a garbled request)
        self.open_errors: dict[str, Callable[[], Exception]] = {}
        self.read_errors: dict[str, Callable[[], Exception]] = {}
        self.start()
        self.url = f"sftp://127.0.0.1:{self.port}/proj"
        self.env = {"MEDIAIDX_SFTP_USER": USER, "MEDIAIDX_SFTP_PASSWORD": SECRET,
                    "MEDIAIDX_SFTP_KNOWN_HOSTS": str(self.known_hosts)}

    def start(self) -> None:
        import asyncssh

        remote = self
        root = str(self.share)

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: Any) -> None:
                remote.conns.append(conn)

            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return username == USER and password == SECRET

        async def stalled() -> None:
            while remote.stall.is_set():
                await asyncio.sleep(0.05)

        class StallingSFTP(asyncssh.SFTPServer):
            async def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
                error = remote.open_errors.get(os.path.basename(os.fsdecode(path)))
                if error is not None:
                    raise error()
                return super().open(path, pflags, attrs)

            async def read(self, file_obj: Any, offset: int, size: int) -> bytes:
                await stalled()
                name = os.path.basename(os.fsdecode(getattr(file_obj, "name", b"")))
                if name in remote.unreadable:
                    raise asyncssh.SFTPFailure("Input/output error")  # as OpenSSH answers an EIO (a bad sector)
                if name in remote.read_errors:
                    raise remote.read_errors[name]()
                return super().read(file_obj, offset, size)  # type: ignore[return-value]

            async def stat(self, path: bytes) -> Any:
                await stalled()
                return super().stat(path)

            async def scandir(self, path: bytes) -> Any:
                await stalled()
                async for name in super().scandir(path):
                    yield name

        def sftp_factory(chan: Any) -> Any:
            return StallingSFTP(chan, chroot=root)

        async def listen() -> Any:
            return await asyncssh.listen("127.0.0.1", self.port, server_host_keys=[self.key], server_factory=Server,
                                         sftp_factory=sftp_factory if self.sftp_subsystem else None,
                                         allow_scp=False)

        self.acceptor = asyncio.run_coroutine_threadsafe(listen(), self.loop).result(10)

    def stop(self) -> None:
        self.stall.clear()

        async def close() -> None:
            if self.acceptor is not None:
                self.acceptor.close()
                await self.acceptor.wait_closed()
            for c in self.conns:
                c.abort()
            self.conns.clear()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.acceptor = None

    def shutdown(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class SMBRemote(FolderRemote):
    """Samba's smbd on a loopback port with a private passdb and one user, serving a temp folder."""

    kind = "smb"

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.smbd = "/usr/sbin/smbd" if Path("/usr/sbin/smbd").exists() else shutil.which("smbd") or "smbd"
        self.port = free_port()
        self.base = tmp / "samba"
        for d in ("private", "lock", "state", "cache", "pid", "log"):
            (self.base / d).mkdir(parents=True)
        self.conf = self.base / "smb.conf"
        import pwd

        unix_user = pwd.getpwuid(os.geteuid()).pw_name
        self.conf.write_text(f"""[global]
    server role = standalone server
    smb ports = {self.port}
    interfaces = 127.0.0.1
    bind interfaces only = yes
    disable netbios = yes
    server min protocol = SMB2_10
    private dir = {self.base}/private
    lock directory = {self.base}/lock
    state directory = {self.base}/state
    cache directory = {self.base}/cache
    pid directory = {self.base}/pid
    ncalrpc dir = {self.base}/ncalrpc
    log file = {self.base}/log/smbd.log
    log level = 1
    passdb backend = tdbsam:{self.base}/private/passdb.tdb
    map to guest = never
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
[media]
    path = {self.share}
    read only = yes
    valid users = {unix_user}
""")
        # Samba users are Unix accounts: the one running smbd, with a password in the private passdb.
        self._add_user(unix_user)
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()
        self.url = f"smb://127.0.0.1:{self.port}/media/proj"
        self.env = {"MEDIAIDX_SMB_USER": unix_user, "MEDIAIDX_SMB_PASSWORD": SECRET}

    def _add_user(self, unix_user: str) -> None:
        r = subprocess.run(["smbpasswd", "-c", str(self.conf), "-s", "-a", unix_user],
                           input=f"{SECRET}\n{SECRET}\n".encode(), capture_output=True, timeout=30)
        if r.returncode != 0:
            pytest.skip(f"smbpasswd could not add a user: {r.stderr.decode(errors='replace').strip()}")

    def start(self) -> None:
        # Its own session: smbd signals its process group when it stops, which must not include pytest.
        self.proc = subprocess.Popen([self.smbd, "--foreground", "--no-process-group", "-s", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_port(self.port)
        except RuntimeError:
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            pytest.skip(f"smbd did not start: {err.strip()[-300:]}")

    def freeze(self, frozen: bool) -> None:
        """Stop (SIGSTOP) or resume smbd and its per-client children: connections stay open, nothing answers."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop(self) -> None:
        self.freeze(False)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        with __import__("contextlib").suppress(RuntimeError):
            wait_port(self.port, up=False, timeout=5)


def smbd_missing() -> str | None:
    if not Path("/usr/sbin/smbd").exists() and not shutil.which("smbd"):
        return "Samba's smbd is not installed (apt-get install samba; CI installs it)"
    if not shutil.which("smbpasswd"):
        return "smbpasswd is not installed (part of Debian's samba-common-bin)"
    return None


BACKENDS = ["s3", "sftp", "smb"]


def make_remote(kind: str, tmp: Path) -> Remote:
    if kind == "s3":
        return S3Remote(tmp)
    if kind == "sftp":
        return SFTPRemote(tmp)
    reason = smbd_missing()
    if reason:
        pytest.skip(reason)
    return SMBRemote(tmp)


def use_server(r: Remote, monkeypatch: Any, tmp_path: Path) -> Remote:
    """Point this test's process at ``r``: its credentials in the environment, no storage.toml of the user's."""
    for k, v in r.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(tmp_path / "no-storage.toml"))
    return r
