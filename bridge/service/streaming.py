"""Reading the files the bridge streams as ZeroMQ frames, off its loop thread: local files and remote ones.

The bridge's loop must never wait on a file system or the network: a local file may sit on a NAS mount that
hangs (an NFS hard mount, a dead SMB share), a remote one behind a server that stops answering. So every
frames transfer reads through a ``ReadAheadSource``: a thread of its own opens the file, hashes the part a
resumed client already has (all of the file when it has it all, never past the size the bridge stat'ed), then
reads chunks in order and wakes the loop. The loop sends what is ready under the client's credit; no more
chunks are read ahead than that credit (and ``depth``), so a client that does not read costs no memory here,
and a read that hangs holds up only its own transfer. ``LocalSource`` reads an fd the bridge opened (on a worker)
into reused buffers; ``RemoteSource`` reads a remote root's object through its ``Storage``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..storage import Storage, StorageUnreachable, open_storage

PREFIX_READ = 8 << 20
LOCAL_READ_AHEAD = 8 << 20  # bytes a local source reads ahead (at least two chunks: one read while one is sent)

_storages: dict[str, Storage] = {}
_lock = threading.Lock()


def storage_for_root(url: str) -> Storage:
    """One Storage (one connection pool) per remote root for the life of the bridge."""
    with _lock:
        st = _storages.get(url)
        if st is None:
            st = _storages[url] = open_storage(url)
        return st


_EOF = object()  # the file ended before its size: it shrank under us
_DONE = object()  # every byte up to the size was read (and the part a resumed client has, hashed)


class ReadAheadSource:
    """Chunks of one file from ``offset``, read ahead in order by a thread of its own; ``read_into`` never
    blocks. Subclasses say how to open and read the file (`_open`, `_read`, `_recycle`).

    Read-ahead is bounded by what the loop allows (`set_limit`: the client's credit, at most ``depth``): a client
    that does not read costs no memory here beyond its credit. ``active_at`` tells the bridge's idle sweep that
    the source is working (in a read, or hashing the part a resumed client has), so a slow storage is not
    mistaken for an idle client."""

    thread_name = "mediaidx-read-ahead"

    def __init__(self, size: int, offset: int, chunk: int, depth: int, hasher: Any,
                 wake: Callable[[], None], limit: int | None = None) -> None:
        self.size = size
        self.chunk = chunk
        self.hasher = hasher
        self.wake = wake
        self.depth = max(depth, 1)
        # Chunks counted from ``offset``: whose read started, that the loop copied out, and the end of what the
        # loop allows (it moves with the client's credit, not with what the loop takes: `set_limit`).
        self._cv = threading.Condition()
        self._started = 0
        self._consumed = 0
        self._allowed_end = self.depth if limit is None else max(limit, 0)
        self.q: queue.SimpleQueue[tuple[int, Any] | BaseException | object] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.pending: tuple[int, memoryview, Any] | None = None  # (file offset, bytes left, what to recycle)
        self.finished = False  # the loop took _DONE: every byte was read and hashed
        self.last_active = time.monotonic()
        self._busy_since: float | None = None  # a read is under way since then
        self.thread = threading.Thread(target=self._run, args=(offset,), name=self.thread_name, daemon=True)
        self.thread.start()

    # -- what a kind of file provides (reader thread) ------------------------------------------------------------
    def _open(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _read(self, fh: Any, pos: int, n: int) -> Any:
        """Up to ``n`` bytes at ``pos`` (a bytes-like object; empty at the end of the file)."""
        raise NotImplementedError

    def _recycle(self, data: Any) -> None:
        """``data`` (from `_read`) is no longer used."""

    def _hash_prefix(self, fh: Any, offset: int) -> bool:
        """Hash bytes [0, offset) (a resumed client verifies the whole file); False if the file is shorter."""
        pos = 0
        while pos < offset and not self.stop.is_set():
            data = self._timed_read(fh, pos, min(PREFIX_READ, offset - pos))
            if not len(data):
                return False
            self.hasher.update(data)
            pos += len(data)
        return True

    # -- reader thread ---------------------------------------------------------------------------------------------
    def _timed_read(self, fh: Any, pos: int, n: int) -> Any:
        self._busy_since = time.monotonic()
        try:
            return self._read(fh, pos, n)
        finally:
            self.last_active = time.monotonic()
            self._busy_since = None

    def _put(self, item: tuple[int, Any] | BaseException | object) -> None:
        self.q.put(item)
        self.wake()

    def _run(self, offset: int) -> None:
        self._busy_since = time.monotonic()  # opening (a remote root connects)
        try:
            with self._open() as fh:
                self._busy_since, self.last_active = None, time.monotonic()
                if offset and not self._hash_prefix(fh, offset):
                    if not self.stop.is_set():
                        self._put(_EOF)  # shorter than the part the client has: the file changed
                    return
                pos = offset
                while pos < self.size and not self.stop.is_set():
                    with self._cv:
                        while (self._started >= self._allowed_end  # the client has no credit for it yet
                               or self._started - self._consumed >= self.depth):  # nor the loop taken enough
                            if self.stop.is_set():
                                return
                            self._cv.wait(0.2)
                        self._started += 1
                    data = self._timed_read(fh, pos, min(self.chunk, self.size - pos))
                    if not len(data):
                        self._put(_EOF)
                        return
                    pos += len(data)
                    self._put((pos - len(data), data))
                    del data  # the loop holds it now (and gives it back): this thread keeps none while it waits
                if not self.stop.is_set():
                    self._put(_DONE)
        except BaseException as exc:  # handed to the loop, which reports it to the client
            if not self.stop.is_set():
                self._put(exc)
        finally:
            self._busy_since = None

    # -- the loop thread -----------------------------------------------------------------------------------------
    def ready(self) -> bool:
        return self.pending is not None or not self.q.empty()

    def set_limit(self, n: int) -> None:
        """How many chunks the reader may read beyond those the loop took (the client's credit; 0: none)."""
        end = self._consumed + max(n, 0)
        if end != self._allowed_end:
            with self._cv:
                self._allowed_end = self._consumed + max(n, 0)
                self._cv.notify()
            self._trim()

    def _spare(self) -> int:
        """Reads still allowed and not started (what a reused buffer is worth keeping for)."""
        return max(min(self._allowed_end, self._consumed + self.depth) - self._started, 0)

    def _trim(self) -> None:
        """Drop spare buffers beyond the limit (subclasses that reuse buffers)."""

    def held_bytes(self) -> int:
        """Memory held in chunks read ahead (for the bridge's per-client cap)."""
        return (self._started - self._consumed) * self.chunk

    def active_at(self) -> float:
        """When the source last did something: when the read under way started, so a read that hangs for good
        counts as idle from its start and the sweep closes the transfer (telling the client)."""
        busy = self._busy_since
        return busy if busy is not None else self.last_active

    def _take(self) -> Any:
        """The next item from the reader: raises its error as OSError; None when nothing is ready."""
        try:
            item = self.q.get_nowait()
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            if isinstance(item, StorageUnreachable):
                raise OSError(item.errno, f"the storage stopped answering ({item.strerror})")
            if isinstance(item, OSError):
                raise item
            raise OSError(f"{type(item).__name__}: {item}")
        return item

    def done(self) -> bool | None:
        """Once every byte was sent: True when the reader has read and hashed the whole file (the hash is
        final), False while it has not, None when the file ended early (it changed). Raises a read error."""
        if self.finished:
            return True
        item = self._take()
        if item is None:
            return False
        if item is _DONE:
            self.finished = True
            return True
        return None  # _EOF, or a chunk past the size: the file is not the one stat'ed

    def read_into(self, buf: memoryview, offset: int) -> int | None:
        """Copy the bytes at ``offset`` into ``buf``: how many (0: the file ended early), or None when they have
        not been read yet (the source wakes the loop when they are). A read error is raised as OSError."""
        if self.pending is None:
            item = self._take()
            if item is None:
                return None
            if item is _EOF or item is _DONE:
                return 0
            pos, data = item  # type: ignore[misc]
            self.pending = (pos, memoryview(data).cast("B"), data)
        pos, view, data = self.pending
        if pos != offset:
            raise OSError("chunks read out of order")
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        if n < len(view):
            self.pending = (pos + n, view[n:], data)
        else:
            self.pending = None
            view.release()
            with self._cv:
                self._consumed += 1
                self._cv.notify()
            self._recycle(data)
        return n

    def close(self) -> None:
        """Stop reading (from the loop): the reader thread ends, and closes the file, once its current read
        returns; nothing here waits for it."""
        self.stop.set()
        self.pending = None
        with self._cv:
            self._cv.notify()
        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                break


class LocalSource(ReadAheadSource):
    """A local file by the fd the bridge opened for it (on a worker, after its checks). The source owns the fd
    from here on: its reader thread closes it when it ends, so neither a hung read nor a hung close ever waits
    on the loop. Chunks are read into a few reused buffers (no allocation per chunk), no more than the limit."""

    thread_name = "mediaidx-local-fetch"

    def __init__(self, fd: int, size: int, offset: int, chunk: int, window: int, hasher: Any,
                 wake: Callable[[], None]) -> None:
        self.fd = fd
        self._free: list[bytearray] = []  # the reader takes, the loop gives back: under _free_lock
        self._free_lock = threading.Lock()
        # No more chunks ahead than the client may have in flight, nor more than LOCAL_READ_AHEAD bytes.
        depth = max(1, min(window, LOCAL_READ_AHEAD // chunk))
        super().__init__(size, offset, chunk, depth, hasher, wake, limit=window)

    @contextlib.contextmanager
    def _open(self) -> Iterator[int]:
        try:
            yield self.fd
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)

    def _preadv_all(self, fd: int, view: memoryview, pos: int) -> int:
        got = 0
        while got < len(view):  # a short read is not the end of the file (network file systems return them)
            k = os.preadv(fd, [view[got:]], pos + got)
            if not k:
                break
            got += k
        return got

    def _hash_prefix(self, fd: int, offset: int) -> bool:
        """Through one buffer of its own, dropped afterwards (not kept among the chunk buffers)."""
        buf = memoryview(bytearray(min(PREFIX_READ, offset)))
        pos = 0
        while pos < offset and not self.stop.is_set():
            view = buf[:min(len(buf), offset - pos)]
            self._busy_since = time.monotonic()
            try:
                n = self._preadv_all(fd, view, pos)
            finally:
                self.last_active = time.monotonic()
                self._busy_since = None
            if not n:
                return False
            self.hasher.update(view[:n])
            pos += n
        return True

    def _read(self, fd: int, pos: int, n: int) -> memoryview:
        with self._free_lock:
            buf = next((b for b in self._free if len(b) >= n), None)
            if buf is not None:
                self._free.remove(buf)
        if buf is None:
            buf = bytearray(max(n, self.chunk))
        view = memoryview(buf)[:n]
        return view[:self._preadv_all(fd, view, pos)]

    def _recycle(self, data: Any) -> None:
        buf = data.obj if isinstance(data, memoryview) else None
        if isinstance(buf, bytearray):
            with self._free_lock:
                if len(self._free) < self._spare():  # spare buffers only for reads still allowed
                    self._free.append(buf)

    def _trim(self) -> None:
        with self._free_lock:
            del self._free[self._spare():]

    def held_bytes(self) -> int:
        return (self._started - self._consumed + len(self._free)) * self.chunk


class RemoteSource(ReadAheadSource):
    """A file on a remote root, through its Storage (ranged reads, retries and timeouts there)."""

    thread_name = "mediaidx-remote-fetch"

    def __init__(self, storage: Storage, relpath: bytes, size: int, offset: int, chunk: int, depth: int,
                 hasher: Any, wake: Callable[[], None], limit: int | None = None) -> None:
        self.storage = storage
        self.relpath = relpath
        super().__init__(size, offset, chunk, depth, hasher, wake, limit=limit)

    def _open(self) -> contextlib.AbstractContextManager[Any]:
        return self.storage.open(self.relpath, self.size)  # type: ignore[call-arg,return-value]

    def _read(self, fh: Any, pos: int, n: int) -> bytes:
        fh.seek(pos)
        return fh.read(n)


def probe_remote(root: str, relpath: bytes) -> dict[str, Any]:
    """Probe a file on a remote root through PyAV's file-object reader (a few ranged reads)."""
    from ..probe import probe_file

    with storage_for_root(root).open(relpath) as fh:
        return probe_file(fh, name=relpath.rpartition(b"/")[2].decode("utf-8", "replace"))
