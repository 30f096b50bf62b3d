"""Local folders and mounted network shares (NFS/SMB/AFP mounts look local to us)."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import RootUnavailableError
from ..mediatypes import is_ignored_dir
from .base import Accept, FileStat, FolderError, Listing, Storage, join


def os_reason(exc: OSError) -> str:
    """A short reason without the path (the caller names the file its own way)."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "vanished during the scan"
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    return exc.strerror or type(exc).__name__


class LocalStorage(Storage):
    """Walks with ``os.scandir`` on bytes paths: no decoding, one lstat per media file, none for others."""

    def __init__(self, root: str | bytes | os.PathLike[str], *, follow_symlinks: bool = False) -> None:
        root_b = os.fsencode(root)
        self.root = os.path.abspath(root_b).rstrip(b"/") or b"/"
        self.url = os.fsdecode(self.root)
        self.follow_symlinks = follow_symlinks

    def _full(self, relpath: bytes) -> bytes:
        if not relpath:
            return self.root
        return self.root + relpath if self.root.endswith(b"/") else self.root + b"/" + relpath

    def check(self) -> None:
        try:
            st = os.stat(self.root)
        except FileNotFoundError:
            raise RootUnavailableError(f"{self.url}: no such folder (is the share mounted?)") from None
        except OSError as exc:
            raise RootUnavailableError(f"{self.url}: {os_reason(exc)}") from None
        if not stat_mod.S_ISDIR(st.st_mode):
            raise RootUnavailableError(f"{self.url}: not a folder")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise RootUnavailableError(f"{self.url}: permission denied")

    def walk(self, accept: Accept) -> Iterator[Listing | FolderError]:
        follow = self.follow_symlinks
        root_st = os.stat(self.root)
        # Folders already walked, by identity: stops symlink loops and double indexing via two links.
        seen_dirs = {(root_st.st_dev, root_st.st_ino)} if follow else None
        stack = [b""]
        while stack:
            rel = stack.pop()
            files: list[FileStat] = []
            issues: list[tuple[bytes, str]] = []
            subdirs: list[bytes] = []
            try:
                with os.scandir(self._full(rel)) as it:
                    for entry in it:
                        name = entry.name
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                if not is_ignored_dir(name):
                                    subdirs.append(name)
                                continue
                            if entry.is_symlink():
                                self._symlink(entry, rel, accept, files, subdirs, issues, seen_dirs)
                                continue
                            if not accept(name):
                                continue
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue  # gone between listing and stat: simply not there
                        except OSError as exc:
                            issues.append((join(rel, name), os_reason(exc)))
                            continue
                        if stat_mod.S_ISREG(st.st_mode):
                            files.append(FileStat(name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev))
            except OSError as exc:
                # Unreadable, or the share dropped mid-listing: a partial listing must not count as complete.
                yield FolderError(rel, os_reason(exc))
                continue
            files.sort(key=_by_name)
            yield Listing(rel, files, issues)
            subdirs.sort(reverse=True)  # popped in name order
            stack.extend(join(rel, d) for d in subdirs)

    def _symlink(self, entry: os.DirEntry[bytes], rel: bytes, accept: Accept, files: list[FileStat],
                 subdirs: list[bytes], issues: list[tuple[bytes, str]], seen_dirs: set | None) -> None:
        relpath = join(rel, entry.name)
        if not self.follow_symlinks:
            if accept(entry.name) or entry.is_dir():
                issues.append((relpath, "symlink not followed (use --follow-symlinks)"))
            return
        try:
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            issues.append((relpath, "broken symlink"))
            return
        except OSError as exc:
            issues.append((relpath, os_reason(exc)))
            return
        if stat_mod.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if seen_dirs is not None and key in seen_dirs:
                issues.append((relpath, "symlink loop or folder already indexed through another path"))
                return
            if seen_dirs is not None:
                seen_dirs.add(key)
            if not is_ignored_dir(entry.name):
                subdirs.append(entry.name)
        elif stat_mod.S_ISREG(st.st_mode) and accept(entry.name):
            files.append(FileStat(entry.name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev))

    def stat(self, relpath: bytes) -> FileStat:
        st = os.stat(self._full(relpath)) if self.follow_symlinks else os.lstat(self._full(relpath))
        return FileStat(relpath.rpartition(b"/")[2], st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)

    def open(self, relpath: bytes) -> BinaryIO:
        return open(self._full(relpath), "rb")

    def local_path(self, relpath: bytes) -> bytes:
        return self._full(relpath)


def _by_name(f: FileStat) -> bytes:
    return f.name
