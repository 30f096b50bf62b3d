"""SMB2/3 shares through smbprotocol (the library behind fsspec's ``smb://``).

Folders are listed with one QUERY_DIRECTORY exchange each (``smbclient.scandir``): the entries carry
size, write time and file id, so unchanged files cost no request of their own. fsspec's ``ls`` would add
one stat round trip per file, which is why the walk talks to smbclient directly. Each storage keeps its
own connection cache, so two roots with different credentials on one server do not share a session.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from typing import Any

from .base import Accept, FileStat
from .remote import RemoteStorage, join_rel, mtime_ns
from .sftp import _HandleFetch

FILE_ATTRIBUTE_DIRECTORY = 0x10
FILE_ATTRIBUTE_REPARSE_POINT = 0x400


class SMBStorage(RemoteStorage):
    CONNECT_TIMEOUT = 10
    # A server that takes requests and never answers (a hung NAS) is given up on after about twice this: then
    # smbprotocol's keep-alive echo goes unanswered and it closes the connection, which wakes every waiting
    # call (its default, 10 minutes each, would hold a scan for 20 minutes).
    RECEIVE_TIMEOUT = 30

    def io_errors(self) -> tuple[type[BaseException], ...]:
        """smbprotocol raises SMBOSError (an OSError) for most status codes, SMBException subclasses for the rest
        (a closed connection, a failed login, a response status it has no errno for), spnego's errors for an
        authentication it cannot complete, and ValueError or struct.error for a reply it cannot parse. While a
        file is read, only an error status about that file is its OSError (``_SMBFile``)."""
        import struct

        from smbprotocol.exceptions import SMBException
        from spnego.exceptions import SpnegoError

        return (*super().io_errors(), SMBException, SpnegoError, ValueError, struct.error)

    def _connect(self) -> Any:
        import smbclient

        o = self.creds.options
        cache: dict[str, Any] = {}
        user = o.get("username")
        if user and o.get("domain"):
            user = f"{o['domain']}\\{user}"
        self._open_connection(cache)
        smbclient.register_session(self.u.host, username=user, password=o.get("password"), port=self._port,
                                   connection_timeout=self.CONNECT_TIMEOUT, connection_cache=cache,
                                   auth_protocol="ntlm" if o.get("password") else "negotiate")
        return cache

    def _open_connection(self, cache: dict[str, Any]) -> None:
        """The connection ``register_session`` would open, with a receive timeout set before its receiver
        thread starts (the thread reads it once per wait)."""
        from smbclient._pool import ClientConfig
        from smbprotocol.connection import Connection

        conn = Connection(ClientConfig().client_guid, self.u.host, self._port, require_signing=True)
        if hasattr(conn, "_receive_timeout"):
            conn._receive_timeout = self.RECEIVE_TIMEOUT
        conn.connect(timeout=self.CONNECT_TIMEOUT)
        cache[f"{self.u.host.lower()}:{self._port}"] = conn

    @property
    def _port(self) -> int:
        return self.u.port or 445

    def _reset(self) -> None:
        with self._lock:
            cache, self._fs = self._fs, None
        if cache:
            import smbclient

            with contextlib.suppress(Exception):  # a dead connection cannot be closed politely
                smbclient.reset_connection_cache(connection_cache=cache)

    def _kw(self) -> dict[str, Any]:
        return {"port": self._port, "connection_cache": self.fs}

    def _unc(self, relpath: bytes) -> str:
        return "\\\\" + self.u.host + "\\" + self.key(relpath).replace("/", "\\")

    def check(self) -> None:
        import smbclient

        try:
            st = self.call(lambda: smbclient.stat(self._unc(b""), **self._kw()), "connecting")
        except self.io_errors() as exc:  # a share that cannot be used: one line naming the root (a bug is raised)
            raise self.unavailable(exc) from None
        if not st.st_file_attributes & FILE_ATTRIBUTE_DIRECTORY:
            raise self.unavailable(NotADirectoryError(errno.ENOTDIR, "not a folder"))

    def _not_found_reason(self) -> str:
        return "no such share or folder"

    def unavailable(self, exc: BaseException) -> Any:
        text = f"{type(exc).__name__} {exc}"
        if "BAD_NETWORK_NAME" in text or "BadNetworkName" in text:
            exc = FileNotFoundError(errno.ENOENT, "no such share")
        elif "OBJECT_NAME_NOT_FOUND" in text or "OBJECT_PATH_NOT_FOUND" in text:
            exc = FileNotFoundError(errno.ENOENT, "no such folder")
        return super().unavailable(exc)

    def _list_dir(self, rel: bytes, accept: Accept) -> tuple[list[FileStat], list[bytes]]:
        import smbclient

        files: list[FileStat] = []
        subdirs: list[bytes] = []
        with smbclient.scandir(self._unc(rel), **self._kw()) as it:
            for e in it:
                info = e.smb_info
                if info.file_attributes & FILE_ATTRIBUTE_REPARSE_POINT:
                    continue  # symlinks and junctions are not followed, as on local roots
                if info.file_attributes & FILE_ATTRIBUTE_DIRECTORY:
                    subdirs.append(join_rel(rel, e.name))
                    continue
                name_b = e.name.encode("utf-8", "surrogateescape")
                if accept(name_b):
                    files.append(FileStat(name_b, int(info.end_of_file), mtime_ns(info.last_write_time),
                                          int(info.file_id) or None))
        return files, subdirs

    def _stat(self, relpath: bytes) -> FileStat:
        import smbclient

        st = smbclient.stat(self._unc(relpath), **self._kw())
        return FileStat(relpath.rpartition(b"/")[2], st.st_size, st.st_mtime_ns, st.st_ino or None)

    def _fetcher(self, relpath: bytes) -> Callable[[int, int], bytes]:
        import smbclient

        # share_access: never lock other readers (another transfer, a compositor) or writers out of the file
        return _HandleFetch(lambda: _SMBFile(smbclient.open_file(self._unc(relpath), mode="rb", buffering=0,
                                                                 share_access="rwd", **self._kw())))


# The read statuses that are about this one file, as the errno and words the scan's 'failed' reason shows
# (smbprotocol names none of these).
_READ_STATUS = {0xC0000034: (errno.ENOENT, "no such file (STATUS_OBJECT_NAME_NOT_FOUND)"),
                0xC0000123: (errno.ENOENT, "no such file (STATUS_FILE_DELETED)"),
                0xC0000022: (errno.EACCES, "access denied (STATUS_ACCESS_DENIED)"),
                0xC0000054: (errno.EBUSY, "locked by another program (STATUS_FILE_LOCK_CONFLICT)"),
                0xC0000185: (errno.EIO, "I/O error on the server's disk (STATUS_IO_DEVICE_ERROR)"),
                0xC000009C: (errno.EIO, "bad sector on the server's disk (STATUS_DEVICE_DATA_ERROR)"),
                0xC000003E: (errno.EIO, "data error on the server's disk (STATUS_DATA_ERROR)"),
                0xC000003F: (errno.EIO, "CRC error on the server's disk (STATUS_CRC_ERROR)")}
# The statuses that are the server's passing state or a lost session, not the file's: the file is then left for
# the next scan, as when the server is unreachable. Every other status on a read fails this file only: a status
# about one file that stopped the whole root would stop it again at every scan, so the files after it would
# never be indexed (a file failed by a passing state is read again with --retry-failed).
_SERVER_STATUS = frozenset((
    0xC000009A,  # STATUS_INSUFFICIENT_RESOURCES
    0xC0000205,  # STATUS_INSUFF_SERVER_RESOURCES
    0xC00000B5,  # STATUS_IO_TIMEOUT
    0xC00000D0,  # STATUS_REQUEST_NOT_ACCEPTED
    0xC0000203,  # STATUS_USER_SESSION_DELETED
    0xC000035C,  # STATUS_NETWORK_SESSION_EXPIRED
    0xC0000008,  # STATUS_INVALID_HANDLE
    0xC0000128,  # STATUS_FILE_CLOSED
    0xC00000C9,  # STATUS_NETWORK_NAME_DELETED
    0xC000020C,  # STATUS_CONNECTION_DISCONNECTED
    0xC0000236,  # STATUS_CONNECTION_REFUSED
))


class _SMBFile:
    """An open file (smbclient's) whose read failures about this file are this file's. smbclient turns a failed
    open into SMBOSError, but a read's error status (a bad sector on the server's disk, another client's lock)
    comes as SMBResponseException: left as it is, it reads as the server's failure ('unreachable', redone by
    the next scan); any status but the server's own (_SERVER_STATUS) becomes OSError, so the scan fails this
    file and goes on. A reply smbprotocol cannot parse (ValueError, struct.error) stays the server's.
    Connecting happens before the open, never in here."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def seek(self, pos: int) -> int:
        return self.f.seek(pos)

    def read(self, n: int) -> bytes:
        from smbprotocol.exceptions import SMBResponseException

        try:
            return self.f.read(n)
        except SMBResponseException as exc:
            if exc.status in _SERVER_STATUS:
                raise
            code, words = _READ_STATUS.get(exc.status, (errno.EIO, f"status 0x{exc.status:08X}"))
            raise OSError(code, f"the server replied: {words}") from None

    def close(self) -> None:
        self.f.close()
