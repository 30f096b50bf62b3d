"""The storage interface every scan root goes through: local mounts (local.py) and SMB/S3/SFTP (remote.py).

Paths inside a root are ``bytes`` relative to it, '/'-separated, ``b""`` for the root itself. Bytes keep
names exact (invalid UTF-8 on old NAS volumes, newlines, emoji) from the walk to the catalog and back.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

import xxhash


class StorageUnreachable(ConnectionError):
    """The storage stopped answering (retries used up): the scan stops cleanly instead of marking files
    failed or missing, and the next scan resumes where this one stopped."""


class FileStat(NamedTuple):
    """What the metadata sync compares: a file with the same size, mtime and inode is not read again.
    A tuple, so that listings cross process boundaries cheaply."""

    name: bytes
    size: int
    mtime_ns: int
    inode: int | None = None
    device: int | None = None
    etag: str | None = None


@dataclass(slots=True)
class Listing:
    """One folder's media files, complete: a folder that could not be listed fully is a FolderError.

    ``files`` is None when the walker was told the folder's last signature (``known``) and found it
    unchanged: then only ``signature`` and ``file_count`` are filled, and nothing had to be shipped.
    """

    relpath: bytes
    files: list[FileStat] | None
    issues: list[tuple[bytes, str]] = field(default_factory=list)  # (relpath, reason) of skipped entries
    signature: bytes = b""
    file_count: int = 0

    def __post_init__(self) -> None:
        if self.files is not None:
            self.file_count = len(self.files)
            if not self.signature:
                self.signature = folder_signature(self.files)


@dataclass(slots=True)
class FolderError:
    """A folder that could not be listed; its catalogued files are left as they are, not marked missing."""

    relpath: bytes
    reason: str


# The one listing issue that means the entry is gone (a link whose target was deleted): any other skipped entry
# (not readable, a symlink not followed) is still there, and the scan leaves its catalogued files alone.
BROKEN_SYMLINK = "broken symlink"

Accept = Callable[[bytes], bool]
Known = dict[bytes, bytes]  # relpath -> signature the catalog holds


def folder_signature(files: list[FileStat]) -> bytes:
    """xxh3-64 over the sorted (name, size, mtime, inode) of a folder's media files."""
    h = xxhash.xxh3_64()
    for f in files:
        h.update(b"%b\0%d\0%d\0%d\n" % (f.name, f.size, f.mtime_ns, f.inode or 0))
    return h.digest()


class Storage(abc.ABC):
    """A scan root. Implementations must be safe to walk while files change underneath."""

    url: str

    @abc.abstractmethod
    def check(self) -> None:
        """Raise RootUnavailableError with a one-line reason if the root cannot be read now."""

    @abc.abstractmethod
    def walk(self, accept: Accept, known: Known | None = None) -> Iterator[Listing | FolderError]:
        """Yield every folder under the root with the files ``accept`` keeps, in no particular order.
        Folders whose signature equals ``known[relpath]`` may come without their files."""

    @abc.abstractmethod
    def list_folder(self, relpath: bytes, accept: Accept) -> Listing | FolderError:
        """One folder's listing, files included."""

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
