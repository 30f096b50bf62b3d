"""Copying that never loses data: verified hashes, atomic placement, never over an existing file."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import shutil
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import xxhash

from ..errors import MediaIdxError, UsageError

CHUNK = 4 * 1024 * 1024


class DestinationExists(MediaIdxError):
    """The destination appeared while we were copying; nothing was overwritten."""


Opener = Callable[[], BinaryIO]


def hash_file(path: str | bytes | os.PathLike[str]) -> str:
    """xxh3-128 of the whole file, hex (fast enough to verify camera originals at disk speed)."""
    with open(path, "rb", buffering=0) as fh:
        return hash_stream(fh)


def hash_stream(fh: BinaryIO) -> str:
    """xxh3-128 of what ``fh`` yields from where it stands to its end (a remote object read in large ranges)."""
    h = xxhash.xxh3_128()
    while chunk := fh.read(CHUNK):
        h.update(chunk)
    return h.hexdigest()


class DestinationError(OSError):
    """Writing the copy failed on the destination's side (mkdir, create, write, fsync, read-back, placement).
    ``filename`` is the destination; ``errno`` tells a full or read-only disk (DISK_FULL) from one bad file."""


# The backup disk cannot take any more files: trying the next file only fails again.
DISK_FULL = {errno.ENOSPC: "the backup disk is full", errno.EDQUOT: "the disk quota is exceeded",
             errno.EROFS: "the backup disk is read-only"}


@contextlib.contextmanager
def _writing(dest: Path) -> Iterator[None]:
    """OSErrors raised inside are the destination's (DestinationError naming ``dest``), never the source's:
    a write() or fsync() error carries no file name to tell them apart afterwards."""
    try:
        yield
    except DestinationError:
        raise
    except OSError as exc:
        raise DestinationError(exc.errno, exc.strerror or str(exc), os.fspath(dest)) from exc


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (the one place a copy's bytes are written)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


PART_SUFFIX = ".mediaidx-part"
STALE_PART_S = 24 * 3600  # a part file this old is a killed copy's, never one still being written


def _temp_stem(name: str) -> str:
    """``name`` cut to at most 120 bytes (room for the suffix within NAME_MAX) on a character boundary:
    half a UTF-8 character is a name exFAT, NTFS, APFS and SMB shares refuse. A name that is not UTF-8
    (its bytes as surrogate escapes) is cut the same way and keeps its bytes."""
    size = 0
    for i, ch in enumerate(name):
        size += len(os.fsencode(ch))
        if size > 120:
            return name[:i]
    return name


def _create_temp(dest: Path) -> tuple[int, Path]:
    """A new, uniquely named temporary file beside ``dest`` (``.<name>.<random>.mediaidx-part``), so two
    copies to the same destination never share one and a leftover of a killed copy is never reused.
    Made with O_EXCL like mkstemp, but with the umask's permissions (mkstemp's 0600 would stay on remote
    sources' copies, which get no copystat)."""
    stem = _temp_stem(dest.name)
    while True:
        tmp = dest.with_name(f".{stem}.{secrets.token_hex(6)}{PART_SUFFIX}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
        except FileExistsError:
            continue


def verified_copy(src: str | bytes | os.PathLike[str] | Opener, dest: Path, *, size: int | None = None,
                  mtime_ns: int | None = None, unchanged: Callable[[], None] | None = None) -> str:
    """Copy ``src`` to ``dest`` (which must not exist) and return the verified hash.

    The data goes to a temporary file of its own beside ``dest``, is flushed to disk, read back and compared
    with the hash of what was read from the source; only then is it linked into place. A file that appears
    at ``dest`` meanwhile is never replaced (DestinationExists). Errors on the destination's side are
    DestinationError (naming ``dest``); those of reading the source pass through as they are.

    ``src`` is a local path (its times are copied), or a function that opens the source for reading: a remote
    object through its Storage, which cannot be stat'ed here. Then ``size`` is the size it was listed with (a
    source that grew or shrank while read is not copied), ``mtime_ns`` the modification time the copy gets,
    and ``unchanged``, called once everything is read and verified and before the copy is placed, raises
    if the source changed meanwhile. Nothing is placed when any of them fails.
    """
    opener: Opener = src if callable(src) else functools.partial(open, src, "rb", buffering=0)
    with _writing(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
    h = xxhash.xxh3_128()
    n = 0
    tmp: Path | None = None
    try:
        with opener() as fin:
            with _writing(dest):
                fd, tmp = _create_temp(dest)
            try:
                while chunk := fin.read(CHUNK):
                    h.update(chunk)
                    with _writing(dest):
                        _write_all(fd, chunk)
                    n += len(chunk)
                with _writing(dest):
                    os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            with _writing(dest):
                os.close(fd)  # some file systems (NFS, SMB) report a full disk only here
        if size is not None and n != size:
            raise MediaIdxError(f"the source changed while it was read ({n} bytes read, {size} expected); "
                                "nothing placed")
        with _writing(dest):
            if not callable(src):
                with contextlib.suppress(OSError):
                    shutil.copystat(src, tmp)
            elif mtime_ns is not None:
                os.utime(tmp, ns=(mtime_ns, mtime_ns))
            written = hash_file(tmp)
        digest = h.hexdigest()
        if written != digest:
            raise MediaIdxError(f"{dest}: verification failed (written {written}, read {digest})")
        if unchanged is not None:
            unchanged()
        with _writing(dest):
            place_no_overwrite(tmp, dest)
        remove_stale_parts(dest)
        return digest
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def remove_stale_parts(dest: Path, *, older_than: float = STALE_PART_S) -> list[Path]:
    """Remove the part files a killed copy to ``dest`` left beside it (``.<name>.<random>.mediaidx-part``,
    or the fixed ``.<name>.mediaidx-part`` of earlier versions): plain files only, and only those not
    written for ``older_than`` seconds; a younger one may belong to a copy still running elsewhere. Called
    once ``dest`` is placed; returns what was removed. A part file that cannot be removed is left alone."""
    stem = _temp_stem(dest.name)
    head = f".{stem}."
    legacy = f".{dest.name}{PART_SUFFIX}"
    removed: list[Path] = []
    limit = time.time() - older_than
    for name in _part_names(dest.parent):
        token = name[len(head):-len(PART_SUFFIX)]
        if name != legacy and not (name.startswith(head) and len(token) == 12
                                   and all(c in "0123456789abcdef" for c in token)):
            continue
        path = dest.parent / name
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            # ctime, not mtime: a copy being verified already carries its source's (old) mtime, while setting
            # it (utime) left ctime at now
            if stat.S_ISREG(st.st_mode) and max(st.st_mtime, st.st_ctime) < limit:
                os.unlink(path)
                removed.append(path)
    return removed


_parts_lock = threading.Lock()
_parts_seen: OrderedDict[str, tuple[float, list[str]]] = OrderedDict()  # folder -> (listed at, part names)


def _part_names(folder: Path) -> list[str]:
    """The part files' names in ``folder``, listed at most every 10 minutes per folder: a backup of a
    folder of 10,000 photos on a NAS must not list it 10,000 times. Names listed that are gone since are
    harmless (lstat fails); a part file made since is younger than a day anyway."""
    key = os.fspath(folder)
    now = time.monotonic()
    with _parts_lock:
        hit = _parts_seen.get(key)
        if hit is not None and now - hit[0] < 600:
            return hit[1]
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it if e.name.endswith(PART_SUFFIX)]
    except OSError:
        return []
    with _parts_lock:
        _parts_seen[key] = (now, names)
        _parts_seen.move_to_end(key)
        while len(_parts_seen) > 256:
            _parts_seen.popitem(last=False)
    return names


def place_no_overwrite(tmp: Path, dest: Path) -> None:
    """Atomically give ``tmp`` the name ``dest`` unless ``dest`` exists (hard link where supported)."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise DestinationExists(f"{dest}: appeared during the copy; left untouched") from None
    except OSError:
        # No hard links here (SMB, exFAT): check-then-rename; the window is a few microseconds.
        if os.path.lexists(dest):
            raise DestinationExists(f"{dest}: appeared during the copy; left untouched") from None
        os.rename(tmp, dest)
        return
    os.unlink(tmp)


def same_content(a: str | bytes | os.PathLike[str], b: str | bytes | os.PathLike[str]) -> bool:
    """Equal size and equal full hash."""
    try:
        if os.path.getsize(a) != os.path.getsize(b):
            return False
    except OSError:
        return False
    return hash_file(a) == hash_file(b)


def check_folder_target(folder: Path) -> None:
    """Refuse, before anything is planned or copied, a destination folder that is (or lies under) a file:
    every copy into it would fail, while a dry run would have promised them."""
    for p in (folder, *folder.absolute().parents):
        if os.path.lexists(p):
            if not os.path.isdir(p):
                raise UsageError(f"{folder}: cannot be a folder ({p} is a file)")
            return
