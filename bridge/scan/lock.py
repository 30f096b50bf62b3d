"""One scan per catalog at a time, across processes (the CLI, the services, a cron job)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import MediaIdxError

_HELD: set[int] = set()  # descriptors of locks this process holds, closed in forked workers


def close_inherited_locks() -> None:
    """In a forked child: close the copies of the parent's lock descriptors, so that the lock is released
    when the parent exits or is killed even if the child lives on."""
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


class ScanLock:
    """An exclusive, non-blocking lock on ``<catalog>.scan.lock``; released if the process dies."""

    def __init__(self, catalog_path: Path) -> None:
        self.path = Path(str(catalog_path) + ".scan.lock")
        self._fd: int | None = None

    def __enter__(self) -> ScanLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            raise MediaIdxError(f"another scan is running on {self.path.with_suffix('').with_suffix('')}") from None
        self._fd = fd
        _HELD.add(fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            _HELD.discard(self._fd)
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
