"""SFTP servers through sshfs (fsspec on asyncssh): one READDIR per folder, ranged reads on an open handle.

The server's host key is checked against ``known_hosts`` (the config/env option, else ~/.ssh/known_hosts):
a scan never trusts an unknown host silently. SFTP v3 has whole-second mtimes and no inode numbers, so
size + mtime decide what changed, and moves are recognised by content fingerprint.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat as stat_mod
import threading
from collections.abc import Callable
from typing import Any

from .base import Accept, FileStat, join
from .remote import RemoteStorage, mtime_ns

# asyncssh's SFTP status classes about the one path asked for (by name: some exist only in newer versions)
# and the errno each one means. Any other status but a lost session or connection (_SFTP_SESSION) is this
# file's too, as EIO: OpenSSH answers a bad sector with a plain failure, a name its file system refuses with a
# bad message; a status about one file that stopped the whole root would stop it again at every scan, so
# the files after it would never be indexed (a file failed by a passing state is read again with
# --retry-failed).
_SFTP_ERRNO = (
    ("SFTPNoSuchFile", errno.ENOENT), ("SFTPNoSuchPath", errno.ENOENT),
    ("SFTPPermissionDenied", errno.EACCES), ("SFTPWriteProtect", errno.EACCES),
    ("SFTPFileIsADirectory", errno.EISDIR), ("SFTPNotADirectory", errno.ENOTDIR),
    ("SFTPInvalidFilename", errno.EINVAL), ("SFTPLinkLoop", errno.ELOOP),
)
_SFTP_SESSION = ("SFTPConnectionLost", "SFTPNoConnection")


class SFTPSetupError(Exception):
    """A local file the connection needs is missing (known_hosts, the key file): asyncssh's FileNotFoundError
    for it would read as 'no such folder' on the server. Not transient either."""


class SFTPStorage(RemoteStorage):
    CONNECT_TIMEOUT = 10
    # One request (a listing, a stat, a read of up to 8 MiB): a server that takes it and never answers (a hung
    # NAS) is given up on after this long, and the retries decide; sshfs itself would wait forever.
    TIMEOUT = 60

    def io_errors(self) -> tuple[type[BaseException], ...]:
        """sshfs turns 'no such file' and a refused login into OSError and passes the rest of asyncssh's
        through: its Error classes (disconnects, lost channels, a refused channel). ValueError is what the
        rest of the setup raises: sshfs's "Can't create any SFTP connections!" (SSH took the login but no SFTP
        session opens: the subsystem is off or the server's session limit is reached), asyncssh for a
        known_hosts line, ~/.ssh/config value (ConfigParseError) or key it cannot read (KeyImportError...) and
        for bytes it cannot decode (PacketDecodeError), and the idna codec (UnicodeError) for a host name no
        lookup can take. SFTP status replies about one file (no such file, permission denied, a read that
        failed on the server's disk) are not among these: ``_file_error`` and ``_SFTPFile.read`` make them
        OSError. SFTPSetupError is ours: a missing known_hosts or key file."""
        import asyncssh

        return (*super().io_errors(), asyncssh.Error, ValueError, SFTPSetupError)

    def _file_error(self, exc: Exception) -> Exception:
        """An SFTP status reply about the path asked for as the OSError it means (_SFTP_ERRNO, else EIO); sshfs
        leaves some of them as asyncssh's class. A lost session or connection stays the server's: the next
        scan redoes the file. A failure status on a read is the file's too: ``_SFTPFile.read``."""
        import asyncssh

        if not isinstance(exc, asyncssh.SFTPError) or any(
                isinstance(exc, getattr(asyncssh, cls, ())) for cls in _SFTP_SESSION):
            return exc
        code = next((e for cls, e in _SFTP_ERRNO if isinstance(exc, getattr(asyncssh, cls, ()))), errno.EIO)
        return OSError(code, f"the server replied: {exc.reason or type(exc).__name__}")

    def unavailable(self, exc: BaseException) -> Any:
        if isinstance(exc, ValueError) and "SFTP connections" in str(exc):  # sshfs's words for it
            exc = SFTPSetupError("the server took the login but opened no SFTP session (is its SFTP subsystem "
                                 "on? has it reached its session limit?)")
        return super().unavailable(exc)

    def _connect(self) -> Any:
        from sshfs import SSHFileSystem

        o = self.creds.options
        known_hosts = os.path.expanduser(o.get("known_hosts") or "~/.ssh/known_hosts")
        kw: dict[str, Any] = {"port": self.u.port or 22, "skip_instance_cache": True,
                              "connect_timeout": self.CONNECT_TIMEOUT,
                              "known_hosts": known_hosts}
        if o.get("username"):
            kw["username"] = o["username"]
        if o.get("password"):
            kw["password"] = o["password"]
        key_file = os.path.expanduser(o["key_file"]) if o.get("key_file") else None
        if key_file:
            kw["client_keys"] = [key_file]
            if o.get("passphrase"):
                kw["passphrase"] = o["passphrase"]
        elif o.get("password"):
            kw["client_keys"] = None   # a password was given: do not offer every key in ~/.ssh first
            kw["agent_path"] = None
        try:
            return SSHFileSystem(self.u.host, **kw)
        except FileNotFoundError as exc:
            # asyncssh reads these as it connects (an unreachable server still says "cannot connect"); their
            # FileNotFoundError would otherwise read as "no such folder" on the server
            missing = os.path.abspath(os.path.expanduser(str(exc.filename or "")))
            if missing == os.path.abspath(known_hosts):
                port = f"-p {self.u.port} " if self.u.port else ""
                raise SFTPSetupError(f"cannot check the server's host key: {known_hosts} does not exist (add "
                                     f"the key with: ssh-keyscan {port}{self.u.host} >> {known_hosts}, or set "
                                     "known_hosts, see docs/storage.md)") from None
            if key_file and missing == os.path.abspath(key_file):
                raise SFTPSetupError(f"the key file {key_file} does not exist (key_file, "
                                     "MEDIAIDX_SFTP_KEY_FILE)") from None
            raise

    def _reset(self) -> None:
        """Also drop the old SSH connection, without waiting. A request given up on at TIMEOUT stays on the IO
        loop holding a pooled channel and the connection; only forgetting ``fs`` would leak one SSH connection
        per timed-out try in the long-running bridge. Aborting it fails those requests at once."""
        with self._lock:   # the base _reset's work, in the same step as taking the old one (as SMB does)
            fs, self._fs = self._fs, None
        if fs is not None:
            with contextlib.suppress(Exception):  # already closed, or the loop is gone
                fs.loop.call_soon_threadsafe(fs.client.abort)   # asyncssh is not thread-safe: abort on its loop

    def _path(self, relpath: bytes) -> bytes:
        """The server path as bytes: asyncssh then hands names back as bytes too, so a name that is not
        valid UTF-8 (old NAS volumes) is listed and read instead of failing the whole listing."""
        base = self.u.path.encode("utf-8")
        return b"/" + (base + b"/" + relpath if base and relpath else base or relpath)

    def _info(self, path: bytes) -> dict[str, Any]:
        from fsspec.asyn import sync
        from sshfs.utils import wrap_exceptions

        fs = self.fs

        @wrap_exceptions
        async def stat() -> dict[str, Any]:
            async with fs._pool.get() as channel:
                return fs._decode_attributes(await channel.stat(path))

        return sync(fs.loop, stat, timeout=self.TIMEOUT)

    def check(self) -> None:
        try:
            info = self.call(lambda: self._info(self._path(b"")), "connecting")
        except self.io_errors() as exc:  # a server that cannot be used: one line naming the root (a bug is raised)
            raise self.unavailable(exc) from None
        if info.get("type") != "directory":
            raise self.unavailable(NotADirectoryError(errno.ENOTDIR, "not a folder"))

    def _list_dir(self, rel: bytes, accept: Accept) -> tuple[list[FileStat], list[bytes]]:
        files: list[FileStat] = []
        subdirs: list[bytes] = []
        for e in self.fs.ls(self._path(rel), detail=True, timeout=self.TIMEOUT):  # sshfs's _ls keeps a bytes path (and names) bytes
            name = e["name"].rstrip(b"/").rpartition(b"/")[2]
            if e.get("type") == "directory":
                subdirs.append(join(rel, name))
                continue
            perms = e.get("permissions")
            if perms is not None and not stat_mod.S_ISREG(perms):
                continue
            if accept(name):
                files.append(FileStat(name, int(e.get("size") or 0), mtime_ns(e.get("mtime"))))
        return files, subdirs

    def _stat(self, relpath: bytes) -> FileStat:
        e = self._info(self._path(relpath))
        return FileStat(relpath.rpartition(b"/")[2], int(e.get("size") or 0), mtime_ns(e.get("mtime")))

    def _fetcher(self, relpath: bytes) -> Callable[[int, int], bytes]:
        return _HandleFetch(lambda: _SFTPFile(self.fs, self._path(relpath), self.TIMEOUT))


class _SFTPFile:
    """An open remote file whose every request has a deadline (sshfs's file object waits forever)."""

    def __init__(self, fs: Any, path: bytes, timeout: float) -> None:
        from fsspec.asyn import sync
        from sshfs.utils import wrap_exceptions

        @wrap_exceptions
        async def open_file() -> Any:
            async with fs._pool.get() as channel:
                return await channel.open(path, "rb")

        self.fs, self.timeout, self.pos = fs, timeout, 0
        self.file = sync(fs.loop, open_file, timeout=timeout)

    def seek(self, pos: int) -> None:
        self.pos = pos

    def read(self, n: int) -> bytes:
        """A status in reply to a read of this open file (OpenSSH's failure for an EIO on a bad sector) is about
        the file: OSError, so the scan fails this file and goes on; a lost session stays the server's."""
        import asyncssh
        from fsspec.asyn import sync

        try:
            data = sync(self.fs.loop, self.file.read, n, self.pos, timeout=self.timeout)
        except asyncssh.SFTPError as exc:
            if any(isinstance(exc, getattr(asyncssh, cls, ())) for cls in _SFTP_SESSION):
                raise
            raise OSError(errno.EIO, f"the server replied: {exc.reason or type(exc).__name__}") from None
        self.pos += len(data)
        return data

    def close(self) -> None:
        # Not waited for: on a server that stopped answering, a polite close would hang like the read did.
        asyncio.run_coroutine_threadsafe(self.file.close(), self.fs.loop)


class _HandleFetch:
    """Ranged reads on one open handle, reopened after a network error (the retry loop calls again)."""

    def __init__(self, opener: Callable[[], Any]) -> None:
        self.opener = opener
        self.handle: Any = None
        self.lock = threading.Lock()

    def __call__(self, start: int, end: int) -> bytes:
        with self.lock:
            try:
                if self.handle is None:
                    self.handle = self.opener()
                self.handle.seek(start)
                parts = []
                want = end - start
                while want > 0:
                    chunk = self.handle.read(want)
                    if not chunk:
                        break
                    parts.append(chunk)
                    want -= len(chunk)
                return b"".join(parts)
            except Exception:  # not handled here: whatever failed (ours too), the handle is dropped and the
                self._drop()   # error raised again unchanged, so the next try opens a fresh one
                raise

    def _drop(self) -> None:
        h, self.handle = self.handle, None
        if h is not None:
            with contextlib.suppress(Exception):  # the connection is already gone
                h.close()

    def close(self) -> None:
        with self.lock:
            self._drop()
