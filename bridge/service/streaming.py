"""Fetching files that live on remote roots (S3, SMB, SFTP) for Blender sessions that cannot reach them.

The bridge's loop must never wait on the network, so a ``RemoteSource`` reads ahead on its own thread:
it opens the object through its ``Storage``, hashes the part a resumed client already has, then reads
chunks in order into a small queue and wakes the loop. The loop sends what is ready under the client's
credit, exactly as for local files; a full queue stops the reader, so memory stays at ``depth`` chunks.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from ..storage import Storage, StorageUnreachable, open_storage

PREFIX_READ = 8 << 20

_storages: dict[str, Storage] = {}
_lock = threading.Lock()


def storage_for_root(url: str) -> Storage:
    """One Storage (one connection pool) per remote root for the life of the bridge."""
    with _lock:
        st = _storages.get(url)
        if st is None:
            st = _storages[url] = open_storage(url)
        return st


class RemoteSource:
    """Chunks of one remote file, read ahead by a thread; ``read_into`` never blocks."""

    def __init__(self, storage: Storage, relpath: bytes, size: int, offset: int, chunk: int, depth: int,
                 hasher: Any, wake: Callable[[], None]) -> None:
        self.storage = storage
        self.relpath = relpath
        self.size = size
        self.chunk = chunk
        self.hasher = hasher
        self.wake = wake
        self.q: queue.Queue[tuple[int, bytes] | BaseException] = queue.Queue(max(depth, 2))
        self.stop = threading.Event()
        self.pending: tuple[int, bytes] | None = None
        self.thread = threading.Thread(target=self._run, args=(offset,), name="mediaidx-remote-fetch", daemon=True)
        self.thread.start()

    def _put(self, item: tuple[int, bytes] | BaseException) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.2)
                self.wake()
                return True
            except queue.Full:
                continue
        return False

    def _run(self, offset: int) -> None:
        try:
            with self.storage.open(self.relpath, self.size) as fh:  # type: ignore[call-arg]
                pos = 0
                while pos < offset and not self.stop.is_set():  # a resumed fetch is verified over the whole file
                    fh.seek(pos)
                    data = fh.read(min(PREFIX_READ, offset - pos))
                    if not data:
                        break
                    self.hasher.update(data)
                    pos += len(data)
                pos = offset
                while pos < self.size and not self.stop.is_set():
                    fh.seek(pos)
                    data = fh.read(min(self.chunk, self.size - pos))
                    if not data:
                        raise OSError("the file changed during the transfer")
                    if not self._put((pos, data)):
                        return
                    pos += len(data)
        except BaseException as exc:  # handed to the loop, which reports it to the client
            self._put(exc)

    def ready(self) -> bool:
        return self.pending is not None or not self.q.empty()

    def read_into(self, buf: memoryview, offset: int) -> int | None:
        """Copy the chunk at ``offset`` into ``buf``; None when it has not arrived yet."""
        if self.pending is None:
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
            self.pending = item
        pos, data = self.pending
        if pos != offset:
            raise OSError("remote chunks out of order")
        n = min(len(buf), len(data))
        buf[:n] = data[:n]
        self.pending = (pos + n, data[n:]) if n < len(data) else None
        return n

    def close(self) -> None:
        self.stop.set()
        while True:  # unblock a reader waiting on a full queue
            try:
                self.q.get_nowait()
            except queue.Empty:
                break


def probe_remote(root: str, relpath: bytes) -> dict[str, Any]:
    """Probe a file on a remote root through PyAV's file-object reader (a few ranged reads)."""
    from ..probe import probe_file

    with storage_for_root(root).open(relpath) as fh:
        return probe_file(fh, name=relpath.rpartition(b"/")[2].decode("utf-8", "replace"))
