"""Local folders and mounted network shares (NFS/SMB/AFP mounts look local to us)."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import RootUnavailableError
from ..mediatypes import is_ignored_dir
from .base import BROKEN_SYMLINK, Accept, FileStat, FolderError, Known, Listing, Storage, join


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
    """Walks with ``os.scandir`` on bytes paths: no decoding, one lstat per media file, none for others.

    Big trees are walked by several processes at once (see ``parallel_walk``): a Python walk is CPU
    bound, and two processes keep up with ``find``.
    """

    # Walk serially until this many folders are waiting, then hand them to worker processes.
    PARALLEL_FRONTIER = 16

    def __init__(self, root: str | bytes | os.PathLike[str], *, follow_symlinks: bool = False,
                 workers: int | None = None) -> None:
        root_b = os.fsencode(root)
        self.root = os.path.abspath(root_b).rstrip(b"/") or b"/"
        self.url = os.fsdecode(self.root)
        self.follow_symlinks = follow_symlinks
        self.workers = workers if workers is not None else min(os.cpu_count() or 1, 4)

    def _full(self, relpath: bytes) -> bytes:
        if not relpath:
            return self.root
        return self.root + relpath if self.root.endswith(b"/") else self.root + b"/" + relpath

    def check(self) -> None:
        try:
            self.url.encode("utf-8")
        except UnicodeEncodeError:
            # the catalog stores a root as text; names below it may be any bytes
            raise RootUnavailableError(f"{self.url.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')}"
                                       ": the root's path is not valid UTF-8; scan a folder above it") from None
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

    # -- walking -----------------------------------------------------------------------------------------
    def walk(self, accept: Accept, known: Known | None = None) -> Iterator[Listing | FolderError]:
        if self.follow_symlinks:
            # Loop detection needs one set of visited folders: stay in one process.
            yield from self._walk_serial([b""], accept, known, seen=set())
            return
        pending = [b""]
        while pending and (len(pending) < self.PARALLEL_FRONTIER or self.workers < 2):
            rel = pending.pop(0)  # breadth first, so the frontier spreads over the tree
            item, subdirs = self.list_with_subdirs(rel, accept, known)
            yield item
            pending.extend(subdirs)
        if pending:
            from .parallel_walk import walk_subtrees

            yield from walk_subtrees(self, pending, accept, known, self.workers)

    def _walk_serial(self, stack: list[bytes], accept: Accept, known: Known | None,
                     seen: set[tuple[int, int]] | None) -> Iterator[Listing | FolderError]:
        if seen is not None and not seen:
            st = os.stat(self.root)
            seen.add((st.st_dev, st.st_ino))
        while stack:
            rel = stack.pop()
            item, subdirs = self.list_with_subdirs(rel, accept, known, seen)
            yield item
            stack.extend(reversed(subdirs))

    def list_folder(self, relpath: bytes, accept: Accept) -> Listing | FolderError:
        return self.list_with_subdirs(relpath, accept, None)[0]

    def list_with_subdirs(self, rel: bytes, accept: Accept, known: Known | None = None,
                          seen: set[tuple[int, int]] | None = None) -> tuple[Listing | FolderError, list[bytes]]:
        """List one folder: its media files (sorted by name) and its subfolders to walk next."""
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
                                subdirs.append(join(rel, name))
                            continue
                        if entry.is_symlink():
                            self._symlink(entry, rel, accept, files, subdirs, issues, seen)
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
            return FolderError(rel, os_reason(exc)), []
        files.sort(key=_by_name)
        subdirs.sort()
        listing = Listing(rel, files, issues)
        if known is not None and known.get(rel) == listing.signature:
            listing.files = None  # the caller already has it
        return listing, subdirs

    def _symlink(self, entry: os.DirEntry[bytes], rel: bytes, accept: Accept, files: list[FileStat],
                 subdirs: list[bytes], issues: list[tuple[bytes, str]], seen: set[tuple[int, int]] | None) -> None:
        relpath = join(rel, entry.name)
        if not self.follow_symlinks:
            if accept(entry.name) or entry.is_dir():
                issues.append((relpath, "symlink not followed (use --follow-symlinks)"))
            return
        try:
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            issues.append((relpath, BROKEN_SYMLINK))
            return
        except OSError as exc:
            issues.append((relpath, os_reason(exc)))
            return
        if stat_mod.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if seen is None or key in seen:
                issues.append((relpath, "symlink loop or folder already indexed through another path"))
                return
            seen.add(key)
            if not is_ignored_dir(entry.name):
                subdirs.append(relpath)
        elif stat_mod.S_ISREG(st.st_mode) and accept(entry.name):
            files.append(FileStat(entry.name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev))

    # -- files -------------------------------------------------------------------------------------------
    def stat(self, relpath: bytes) -> FileStat:
        st = os.stat(self._full(relpath)) if self.follow_symlinks else os.lstat(self._full(relpath))
        return FileStat(relpath.rpartition(b"/")[2], st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)

    def open(self, relpath: bytes) -> BinaryIO:
        return open(self._full(relpath), "rb")

    def local_path(self, relpath: bytes) -> bytes:
        return self._full(relpath)


def _by_name(f: FileStat) -> bytes:
    return f.name
