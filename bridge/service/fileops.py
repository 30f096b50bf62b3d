"""File operations that may hang, each on a daemon thread, capped per storage.

A NAS mount that stops answering (an NFS hard mount, a dead SMB share) blocks every call on it, for as long as
it likes, and no thread stuck there can be stopped. So the bridge runs its file checks (containment, open, stat,
a scan's root check) here, keyed by the storage they touch (the catalog root): at most FILE_OPS_PER_KEY calls
of one key run at once and FILE_OPS_TOTAL in all. A call beyond that waits for a slot, but never longer than
STUCK_AFTER_S: a storage whose calls all hang answers ``unavailable`` ("the storage is not answering") at once
instead of queueing behind them, while the other storages go on. The threads are daemons: one stuck on a dead
mount never holds up the process's exit.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from blender_mediaidx.core import protocol as P

FILE_OPS_PER_KEY = 4    # calls of one storage at once: more than one (a slow file must not hold up its neighbours)
FILE_OPS_TOTAL = 64     # threads in all, whatever the number of storages that hang
STUCK_AFTER_S = 5.0     # a call waiting this long for a slot (its storage's calls all hang) is refused

Call = Callable[[], None]
Fail = Callable[[BaseException], None]


class FileOps:
    """Run calls on daemon threads, at most FILE_OPS_PER_KEY per key and FILE_OPS_TOTAL in all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Any, dict[int, float]] = {}  # key -> {token: start time}
        self._queued: dict[Any, collections.deque[tuple[float, Call, Fail]]] = {}
        self._threads = 0
        self._tokens = itertools.count()
        self._closed = False

    def submit(self, key: Any, fn: Call, fail: Fail) -> None:
        """Run ``fn()`` on a thread of its own now or once a slot frees; ``fail(exc)`` instead (on this or the
        loop's thread) when the key's storage is not answering or the bridge stops. ``fn`` reports its own
        errors."""
        now = time.monotonic()
        with self._lock:
            if self._closed:
                refused: BaseException | None = P.ProtocolError(P.UNAVAILABLE, "the bridge is stopping")
            else:
                running = self._running.setdefault(key, {})
                if self._has_room(key):
                    self._start(key, fn)
                    return
                if running and all(now - t0 > STUCK_AFTER_S for t0 in running.values()):
                    refused = _not_answering(key)
                else:
                    self._queued.setdefault(key, collections.deque()).append((now, fn, fail))
                    return
        fail(refused)

    def expire(self) -> None:
        """Refuse the calls that waited STUCK_AFTER_S for a slot (the bridge's loop calls this often: cheap)."""
        if not self._queued:
            return
        now = time.monotonic()
        late: list[tuple[Any, Fail]] = []
        with self._lock:
            for key, q in list(self._queued.items()):
                while q and now - q[0][0] > STUCK_AFTER_S:
                    late.append((key, q.popleft()[2]))
                if not q:
                    del self._queued[key]
        for key, fail in late:
            fail(_not_answering(key))

    def close(self) -> None:
        """Refuse what waits; the calls running end on their own (daemon threads)."""
        with self._lock:
            self._closed = True
            late = [item[2] for q in self._queued.values() for item in q]
            self._queued.clear()
        for fail in late:
            fail(P.ProtocolError(P.UNAVAILABLE, "the bridge is stopping"))

    def running(self) -> int:
        """Threads running calls now."""
        return self._threads

    # -- under the lock ------------------------------------------------------------------------------------------
    def _has_room(self, key: Any) -> bool:
        return (len(self._running.get(key, ())) < FILE_OPS_PER_KEY and self._threads < FILE_OPS_TOTAL
                and not self._queued.get(key))

    def _start(self, key: Any, fn: Call) -> None:
        token = next(self._tokens)
        self._running.setdefault(key, {})[token] = time.monotonic()
        self._threads += 1
        try:
            threading.Thread(target=self._run, args=(key, token, fn), name="mediaidx-fs", daemon=True).start()
        except BaseException:
            self._threads -= 1
            del self._running[key][token]
            raise

    def _next(self) -> tuple[Any, int, Call] | None:
        """A queued call that may run now (on the thread that just finished one), or None."""
        for key, q in self._queued.items():
            if q and len(self._running.get(key, ())) < FILE_OPS_PER_KEY:
                _, fn, _ = q.popleft()
                if not q:
                    del self._queued[key]
                token = next(self._tokens)
                self._running.setdefault(key, {})[token] = time.monotonic()
                return key, token, fn
        return None

    # -- the threads ----------------------------------------------------------------------------------------------
    def _run(self, key: Any, token: int, fn: Call) -> None:
        while True:
            with contextlib.suppress(BaseException):  # fn reports its own errors; the slot is freed anyway
                fn()
            with self._lock:
                running = self._running.get(key, {})
                running.pop(token, None)
                if not running:
                    self._running.pop(key, None)
                nxt = None if self._closed else self._next()
                if nxt is None:
                    self._threads -= 1
                    return
            key, token, fn = nxt


def _not_answering(key: Any) -> P.ProtocolError:
    return P.ProtocolError(P.UNAVAILABLE, f"the storage is not answering: earlier file operations on {key} have "
                                          f"waited over {STUCK_AFTER_S:.0f} s; try again later")
