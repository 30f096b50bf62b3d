"""File operations that may hang, each on a daemon thread, capped per storage.

A NAS mount that stops answering (an NFS hard mount, a dead SMB share) blocks every call on it, for as long as
it likes, and no thread stuck there can be stopped. So the bridge runs its file checks (containment, open, stat,
a scan's root check) here, keyed by the storage they touch (the catalog root): at most FILE_OPS_PER_KEY calls
of one key run at once and FILE_OPS_TOTAL in all. A call beyond that waits for a slot as long as its storage
makes progress: it is refused ``unavailable`` ("the storage is not answering") only once calls of its key are
running and none of them has finished for the key's limit (STUCK_AFTER_S for a local root, REMOTE_STUCK_AFTER_S
for a remote one, which is longer than its own connect timeouts and retries). A slow but healthy storage (a NAS
waking its disks, a first SFTP connect) is waited for; one that hangs answers within the limit while the other
storages go on. A call that waits only because FILE_OPS_TOTAL threads are running (stuck on storages that hang)
is refused, saying so, once no call anywhere has finished for STUCK_AFTER_S. The threads are daemons: one stuck
on a dead mount never holds up the process's exit.
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
STUCK_AFTER_S = 20.0    # a local storage whose running calls finished none for this long is not answering
#                         (a NAS spinning its disks up stalls every call for 8-15 s: that is not a dead mount)
REMOTE_STUCK_AFTER_S = 45.0  # the same for a remote root (s3/smb/sftp): longer than its connects x retries

Call = Callable[[], None]
Fail = Callable[[BaseException], None]


class FileOps:
    """Run calls on daemon threads, at most FILE_OPS_PER_KEY per key and FILE_OPS_TOTAL in all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Any, dict[int, float]] = {}  # key -> {token: start time}
        self._queued: dict[Any, collections.deque[tuple[float, Call, Fail]]] = {}
        self._progress: dict[Any, float] = {}  # key -> when one of its calls last finished (or it became busy)
        self._last_done = time.monotonic()  # when any call last finished (the total cap's progress)
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
                if self._has_room(key):
                    self._start(key, fn)
                    return
                refused = self._stuck(key, now)
                if refused is None:
                    self._queued.setdefault(key, collections.deque()).append((now, fn, fail))
                    return
        fail(refused)

    def expire(self) -> None:
        """Refuse the calls waiting on a storage that stopped making progress (the bridge's loop calls this
        often: cheap). Calls behind a storage whose calls still finish go on waiting."""
        if not self._queued:
            return
        now = time.monotonic()
        late: list[tuple[BaseException, Fail]] = []
        with self._lock:
            for key, q in list(self._queued.items()):
                refused = self._stuck(key, now)
                if refused is None:
                    continue
                late.extend((refused, item[2]) for item in q)
                del self._queued[key]
        for exc, fail in late:
            fail(exc)

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
    def _stuck(self, key: Any, now: float) -> P.ProtocolError | None:
        """Why a call of ``key`` that has no slot is refused now, or None while it should wait."""
        if self._running.get(key):
            limit = stuck_after(key)
            if now - self._progress.get(key, now) > limit:
                return P.ProtocolError(P.UNAVAILABLE, f"the storage is not answering: no file operation on {key} "
                                                      f"has finished for {limit:.0f} s; try again later")
            return None
        # no call of its own runs: it waits for one of the FILE_OPS_TOTAL threads
        if self._threads >= FILE_OPS_TOTAL and now - self._last_done > STUCK_AFTER_S:
            return P.ProtocolError(P.UNAVAILABLE, f"the bridge is busy: all {FILE_OPS_TOTAL} file-operation threads "
                                                  f"are taken (storages that are not answering) and none has "
                                                  f"finished for {STUCK_AFTER_S:.0f} s; try again later")
        return None

    def _has_room(self, key: Any) -> bool:
        return (len(self._running.get(key, ())) < FILE_OPS_PER_KEY and self._threads < FILE_OPS_TOTAL
                and not self._queued.get(key))

    def _start(self, key: Any, fn: Call) -> None:
        token = next(self._tokens)
        self._claim(key, token)
        self._threads += 1
        try:
            threading.Thread(target=self._run, args=(key, token, fn), name="mediaidx-fs", daemon=True).start()
        except BaseException:
            self._threads -= 1
            del self._running[key][token]
            if not self._running[key]:
                del self._running[key]
            raise

    def _claim(self, key: Any, token: int) -> None:
        running = self._running.setdefault(key, {})
        if not running:  # busy from now: its progress is measured from here
            self._progress[key] = time.monotonic()
        running[token] = time.monotonic()

    def _next(self) -> tuple[Any, int, Call] | None:
        """A queued call that may run now (on the thread that just finished one), or None."""
        for key, q in self._queued.items():
            if q and len(self._running.get(key, ())) < FILE_OPS_PER_KEY:
                _, fn, _ = q.popleft()
                if not q:
                    del self._queued[key]
                token = next(self._tokens)
                self._claim(key, token)
                return key, token, fn
        return None

    # -- the threads ----------------------------------------------------------------------------------------------
    def _run(self, key: Any, token: int, fn: Call) -> None:
        while True:
            with contextlib.suppress(BaseException):  # fn reports its own errors; the slot is freed anyway
                fn()
            with self._lock:
                now = time.monotonic()
                self._progress[key] = self._last_done = now
                running = self._running.get(key, {})
                running.pop(token, None)
                if not running:
                    self._running.pop(key, None)
                    self._progress.pop(key, None)
                nxt = None if self._closed else self._next()
                if nxt is None:
                    self._threads -= 1
                    return
            key, token, fn = nxt


def stuck_after(key: Any) -> float:
    """How long calls of ``key`` may finish none before its storage counts as not answering: longer for a
    remote root (its connects and retries)."""
    return REMOTE_STUCK_AFTER_S if "://" in str(key) else STUCK_AFTER_S
