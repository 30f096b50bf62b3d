"""Reading the files the bridge streams as ZeroMQ frames, off its loop thread: local files and remote ones.

The bridge's loop must never wait on a file system or the network: a local file may sit on a NAS mount that
hangs (an NFS hard mount, a dead SMB share), a remote one behind a server that stops answering. So every
frames transfer reads through a ``ReadAheadSource``: a thread of its own opens the file, hashes the part a
resumed client already has, then reads chunks in order and wakes the loop. The loop sends what is ready under
the client's credit; at most ``depth`` chunks are read ahead, so memory per transfer stays bounded, and a
read that hangs holds up only its own transfer. ``LocalSource`` reads an fd the bridge opened (on a worker)
into reused buffers; ``RemoteSource`` reads a remote root's object through its ``Storage``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
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


class ReadAheadSource:
    """Chunks of one file from ``offset``, read ahead in order by a thread of its own; ``read_into`` never
    blocks. Subclasses say how to open and read the file (`_open`, `_read`, `_recycle`)."""

    thread_name = "mediaidx-read-ahead"

    def __init__(self, size: int, offset: int, chunk: int, depth: int, hasher: Any,
                 wake: Callable[[], None]) -> None:
        self.size = size
        self.chunk = chunk
        self.hasher = hasher
        self.wake = wake
        # Chunks read and not yet copied out by the loop: one slot each, so at most ``depth`` are held.
        self._slots = threading.Semaphore(max(depth, 2))
        self.q: queue.SimpleQueue[tuple[int, Any] | BaseException | object] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.pending: tuple[int, memoryview, Any] | None = None  # (file offset, bytes left, what to recycle)
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

    # -- reader thread ---------------------------------------------------------------------------------------------
    def _put(self, item: tuple[int, Any] | BaseException | object) -> None:
        self.q.put(item)
        self.wake()

    def _run(self, offset: int) -> None:
        try:
            with self._open() as fh:
                pos = 0
                while pos < offset and not self.stop.is_set():  # a resumed fetch is verified over the whole file
                    data = self._read(fh, pos, min(PREFIX_READ, offset - pos))
                    if not len(data):
                        break
                    self.hasher.update(data)
                    pos += len(data)
                    self._recycle(data)
                pos = offset
                while pos < self.size and not self.stop.is_set():
                    while not self._slots.acquire(timeout=0.2):  # the loop has not taken the chunks read ahead
                        if self.stop.is_set():
                            return
                    data = self._read(fh, pos, min(self.chunk, self.size - pos))
                    if not len(data):
                        self._put(_EOF)
                        return
                    self._put((pos, data))
                    pos += len(data)
        except BaseException as exc:  # handed to the loop, which reports it to the client
            if not self.stop.is_set():
                self._put(exc)

    # -- the loop thread -----------------------------------------------------------------------------------------
    def ready(self) -> bool:
        return self.pending is not None or not self.q.empty()

    def read_into(self, buf: memoryview, offset: int) -> int | None:
        """Copy the bytes at ``offset`` into ``buf``: how many (0: the file ended early), or None when they have
        not been read yet (the source wakes the loop when they are). A read error is raised as OSError."""
        if self.pending is None:
            try:
                item = self.q.get_nowait()
            except queue.Empty:
                return None
            if item is _EOF:
                return 0
            if isinstance(item, BaseException):
                if isinstance(item, StorageUnreachable):
                    raise OSError(item.errno, f"the storage stopped answering ({item.strerror})")
                if isinstance(item, OSError):
                    raise item
                raise OSError(f"{type(item).__name__}: {item}")
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
            self._recycle(data)
            self._slots.release()
        return n

    def close(self) -> None:
        """Stop reading (from the loop): the reader thread ends, and closes the file, once its current read
        returns; nothing here waits for it."""
        self.stop.set()
        self.pending = None
        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                break


class LocalSource(ReadAheadSource):
    """A local file by the fd the bridge opened for it (on a worker, after its checks). The source owns the fd
    from here on: its reader thread closes it when it ends, so neither a hung read nor a hung close ever waits
    on the loop. Chunks are read into a few reused buffers (no allocation per chunk)."""

    thread_name = "mediaidx-local-fetch"

    def __init__(self, fd: int, size: int, offset: int, chunk: int, window: int, hasher: Any,
                 wake: Callable[[], None]) -> None:
        self.fd = fd
        self._free: list[bytearray] = []  # the reader takes, the loop gives back: under _free_lock
        self._free_lock = threading.Lock()
        # No more chunks ahead than the client may have in flight, nor more than LOCAL_READ_AHEAD bytes.
        self.depth = max(2, min(window + 2, LOCAL_READ_AHEAD // chunk))
        super().__init__(size, offset, chunk, self.depth, hasher, wake)

    @contextlib.contextmanager
    def _open(self) -> Iterator[int]:
        try:
            yield self.fd
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)

    def _read(self, fd: int, pos: int, n: int) -> memoryview:
        with self._free_lock:
            buf = next((b for b in self._free if len(b) >= n), None)
            if buf is not None:
                self._free.remove(buf)
        if buf is None:
            buf = bytearray(max(n, self.chunk))
        view = memoryview(buf)[:n]
        got = 0
        while got < n:  # a short read is not the end of the file (network file systems return them)
            k = os.preadv(fd, [view[got:]], pos + got)
            if not k:
                break
            got += k
        return view[:got]

    def _recycle(self, data: Any) -> None:
        buf = data.obj if isinstance(data, memoryview) else None
        if isinstance(buf, bytearray):
            with self._free_lock:
                if len(self._free) <= self.depth:
                    self._free.append(buf)


class RemoteSource(ReadAheadSource):
    """A file on a remote root, through its Storage (ranged reads, retries and timeouts there)."""

    thread_name = "mediaidx-remote-fetch"

    def __init__(self, storage: Storage, relpath: bytes, size: int, offset: int, chunk: int, depth: int,
                 hasher: Any, wake: Callable[[], None]) -> None:
        self.storage = storage
        self.relpath = relpath
        super().__init__(size, offset, chunk, depth, hasher, wake)

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
