"""SFTP servers through sshfs (fsspec on asyncssh): one READDIR per folder, ranged reads on an open handle.

The server's host key is checked against ``known_hosts`` (the config/env option, else ~/.ssh/known_hosts):
a scan never trusts an unknown host silently. SFTP v3 has whole-second mtimes and no inode numbers, so
size + mtime decide what changed, and moves are recognised by content fingerprint.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
import threading
from collections.abc import Callable
from typing import Any

from .base import Accept, FileStat
from .remote import RemoteStorage, join_rel, mtime_ns


class SFTPStorage(RemoteStorage):
    def _connect(self) -> Any:
        from sshfs import SSHFileSystem

        o = self.creds.options
        kw: dict[str, Any] = {"port": self.u.port or 22, "skip_instance_cache": True, "connect_timeout": 10,
                              "known_hosts": os.path.expanduser(o.get("known_hosts") or "~/.ssh/known_hosts")}
        if o.get("username"):
            kw["username"] = o["username"]
        if o.get("password"):
            kw["password"] = o["password"]
        if o.get("key_file"):
            kw["client_keys"] = [os.path.expanduser(o["key_file"])]
            if o.get("passphrase"):
                kw["passphrase"] = o["passphrase"]
        elif o.get("password"):
            kw["client_keys"] = None   # a password was given: do not offer every key in ~/.ssh first
            kw["agent_path"] = None
        return SSHFileSystem(self.u.host, **kw)

    def _path(self, relpath: bytes) -> str:
        return "/" + self.key(relpath)

    def check(self) -> None:
        try:
            info = self.call(lambda: self.fs.info(self._path(b"")), "connecting")
        except Exception as exc:
            raise self.unavailable(exc) from None
        if info.get("type") != "directory":
            raise self.unavailable(NotADirectoryError(errno.ENOTDIR, "not a folder"))

    def _list_dir(self, rel: bytes, accept: Accept) -> tuple[list[FileStat], list[bytes]]:
        files: list[FileStat] = []
        subdirs: list[bytes] = []
        for e in self.fs.ls(self._path(rel), detail=True):
            name = e["name"].rstrip("/").rpartition("/")[2]
            if e.get("type") == "directory":
                subdirs.append(join_rel(rel, name))
                continue
            perms = e.get("permissions")
            if perms is not None and not stat_mod.S_ISREG(perms):
                continue
            name_b = name.encode("utf-8", "surrogateescape")
            if accept(name_b):
                files.append(FileStat(name_b, int(e.get("size") or 0), mtime_ns(e.get("mtime"))))
        return files, subdirs

    def _stat(self, relpath: bytes) -> FileStat:
        e = self.fs.info(self._path(relpath))
        return FileStat(relpath.rpartition(b"/")[2], int(e.get("size") or 0), mtime_ns(e.get("mtime")))

    def _fetcher(self, relpath: bytes) -> Callable[[int, int], bytes]:
        return _HandleFetch(lambda: self.fs.open(self._path(relpath), "rb"))


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
            except Exception:
                self._drop()
                raise

    def _drop(self) -> None:
        h, self.handle = self.handle, None
        if h is not None:
            with contextlib.suppress(Exception):  # the connection is already gone
                h.close()

    def close(self) -> None:
        with self.lock:
            self._drop()
