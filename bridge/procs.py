"""Worker processes for CPU-bound jobs (walking, probing).

On Linux a single-threaded caller (the CLI, a plain script) forks: workers start in milliseconds and, unlike
spawn/forkserver, fork does not re-run the caller's ``__main__``, so a script calling ``MediaIndexer().scan()``
without an ``if __name__ == "__main__"`` guard still works. A threaded caller (the services, Blender, a test
runner) gets the forkserver for decoding workers (see `decoder_context`). Workers never log through inherited
handlers or touch inherited sockets, and die with their parent. Elsewhere (macOS, Windows) spawn is the only
safe choice and the guard is needed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from multiprocessing.context import BaseContext


def mp_context() -> BaseContext:
    if sys.platform.startswith("linux"):
        return mp.get_context("fork")
    return mp.get_context("spawn")


def os_threads() -> int:
    """Threads of this process, native ones included (ZeroMQ, FFmpeg, Blender); 0 when unknown."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def decoder_context() -> BaseContext:
    """The start method for workers that decode media. Forking a process that runs other threads copies
    whatever locks they hold (FFmpeg's, Blender's): a child then waits forever on one. A single-threaded
    process (the CLI) forks; a threaded one (the services, an embedding app) uses the forkserver, whose
    children fork from a clean single-threaded process."""
    if sys.platform.startswith("linux"):
        return mp.get_context("fork" if os_threads() == 1 else "forkserver")
    return mp.get_context("spawn")


def die_with_parent(parent: int | None = None) -> None:
    """In a worker: exit when the parent dies (a killed scan must not leave workers behind holding its
    inherited scan lock), and drop inherited lock descriptors so the lock dies with the parent.
    `parent` is the pid that forked us, to catch a parent that died before the death signal was armed."""
    from .scan.lock import close_inherited_locks

    close_inherited_locks()
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            return
        if parent is not None and os.getppid() != parent:  # it died before prctl took effect
            os._exit(1)
