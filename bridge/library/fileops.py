"""Copying that never loses data: verified hashes, atomic placement, never over an existing file."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import xxhash

from ..errors import MediaIdxError, UsageError

CHUNK = 4 * 1024 * 1024


class DestinationExists(MediaIdxError):
    """The destination appeared while we were copying; nothing was overwritten."""


def hash_file(path: str | bytes | os.PathLike[str]) -> str:
    """xxh3-128 of the whole file, hex (fast enough to verify camera originals at disk speed)."""
    h = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verified_copy(src: str | bytes | os.PathLike[str], dest: Path) -> str:
    """Copy ``src`` to ``dest`` (which must not exist) and return the verified hash.

    The data goes to a temporary file beside ``dest``, is flushed to disk, read back and compared with
    the hash of what was read from the source; only then is it linked into place. A file that appears
    at ``dest`` meanwhile is never replaced (DestinationExists).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.mediaidx-part")
    h = xxhash.xxh3_128()
    try:
        with open(src, "rb", buffering=0) as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(CHUNK):
                h.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        with contextlib.suppress(OSError):
            shutil.copystat(src, tmp)
        digest = h.hexdigest()
        written = hash_file(tmp)
        if written != digest:
            raise MediaIdxError(f"{dest}: verification failed (written {written}, read {digest})")
        place_no_overwrite(tmp, dest)
        return digest
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


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
