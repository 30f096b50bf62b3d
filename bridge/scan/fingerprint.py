"""Content fingerprints that recognise a moved or renamed file without reading all of it.

size + xxh3-128 of the first and last 64 KiB: two reads per file whatever its size, so a 40 GB camera
original costs the same as a proxy. Distinct takes from one camera differ in both blocks (headers carry
times, the tail carries the index), and the size must match too.
"""

from __future__ import annotations

import os
from typing import BinaryIO

import xxhash

BLOCK = 64 * 1024


def fingerprint_path(path: bytes | str, size: int | None = None) -> bytes:
    """Fingerprint of a local file; ``size`` is the stat size if already known."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        if size is None:
            size = os.fstat(fd).st_size
        h = xxhash.xxh3_128(size.to_bytes(8, "little"))
        if size <= 2 * BLOCK:
            h.update(os.pread(fd, size, 0) if hasattr(os, "pread") else os.read(fd, size))
        else:
            h.update(_pread(fd, BLOCK, 0))
            h.update(_pread(fd, BLOCK, size - BLOCK))
        return h.digest()
    finally:
        os.close(fd)


def _pread(fd: int, n: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, n, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, n)


def fingerprint_fileobj(fh: BinaryIO, size: int) -> bytes:
    """Fingerprint through a seekable file object (remote storage does ranged reads)."""
    h = xxhash.xxh3_128(size.to_bytes(8, "little"))
    if size <= 2 * BLOCK:
        fh.seek(0)
        h.update(fh.read(size))
    else:
        fh.seek(0)
        h.update(fh.read(BLOCK))
        fh.seek(size - BLOCK)
        h.update(fh.read(BLOCK))
    return h.digest()
