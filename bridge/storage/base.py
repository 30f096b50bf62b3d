"""The storage interface every scan root goes through: local mounts today, SMB/S3/SFTP backends later.

Paths inside a root are ``bytes`` relative to it, '/'-separated, ``b""`` for the root itself. Bytes keep
names exact (invalid UTF-8 on old NAS volumes, newlines, emoji) from the walk to the catalog and back.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO


@dataclass(slots=True)
class FileStat:
    """What the metadata sync compares: a file with the same size, mtime and inode is not read again."""

    name: bytes
    size: int
    mtime_ns: int
    inode: int | None = None
    device: int | None = None
    etag: str | None = None


@dataclass(slots=True)
class Listing:
    """One folder's media files, complete: a folder that could not be listed fully is a FolderError."""

    relpath: bytes
    files: list[FileStat]
    issues: list[tuple[bytes, str]] = field(default_factory=list)  # (relpath, reason) of skipped entries


@dataclass(slots=True)
class FolderError:
    """A folder that could not be listed; its catalogued files are left as they are, not marked missing."""

    relpath: bytes
    reason: str


Accept = Callable[[bytes], bool]


class Storage(abc.ABC):
    """A scan root. Implementations must be safe to walk while files change underneath."""

    url: str

    @abc.abstractmethod
    def check(self) -> None:
        """Raise RootUnavailableError with a one-line reason if the root cannot be read now."""

    @abc.abstractmethod
    def walk(self, accept: Accept) -> Iterator[Listing | FolderError]:
        """Yield every folder under the root (the root first) with the files ``accept`` keeps."""

    @abc.abstractmethod
    def stat(self, relpath: bytes) -> FileStat:
        """Current stat of one file; FileNotFoundError when it is gone."""

    @abc.abstractmethod
    def open(self, relpath: bytes) -> BinaryIO:
        """A seekable binary file object for reading."""

    def local_path(self, relpath: bytes) -> bytes | None:
        """A path the local OS can open, or None for remote storage (callers then use ``open``)."""
        return None

    def display(self, relpath: bytes) -> str:
        """The file as a user should see it (undecodable bytes shown as \\xNN)."""
        rel = relpath.decode("utf-8", "backslashreplace")
        return f"{self.url.rstrip('/')}/{rel}" if rel else self.url


def join(parent: bytes, name: bytes) -> bytes:
    return parent + b"/" + name if parent else name


def split(relpath: bytes) -> tuple[bytes, bytes]:
    """(folder, name) of a relative path."""
    cut = relpath.rfind(b"/")
    return (relpath[:cut], relpath[cut + 1:]) if cut >= 0 else (b"", relpath)
