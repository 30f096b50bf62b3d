"""Worker processes for CPU-bound jobs (walking, probing).

On Linux we fork: workers start in milliseconds and, unlike spawn/forkserver, fork does not re-run the
caller's ``__main__``, so a plain script calling ``MediaIndexer().scan()`` without an
``if __name__ == "__main__"`` guard still works. Workers never log through inherited handlers or touch
inherited sockets. Elsewhere (macOS, Windows) spawn is the only safe choice and the guard is needed.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from multiprocessing.context import BaseContext


def mp_context() -> BaseContext:
    if sys.platform.startswith("linux"):
        return mp.get_context("fork")
    return mp.get_context("spawn")
