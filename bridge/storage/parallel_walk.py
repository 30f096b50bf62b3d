"""Walking big local trees in several processes.

A Python walk is CPU-bound (a DirEntry and a stat result per file), so one process cannot keep up with
``find``; two can. Workers take folders from a shared queue, walk them, and hand back batches of
folders through a bounded queue, so memory stays flat whatever the size of the tree. A worker that sees
the queue run dry gives away subfolders instead of walking them itself, so one huge folder does not
leave the other workers idle. Unchanged folders (signature equal to the catalog's) come back without
their file lists.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..procs import mp_context
from .base import Accept, FileStat, FolderError, Known, Listing

if TYPE_CHECKING:
    from .local import LocalStorage

RESULT_QUEUE_SIZE = 16          # batches in flight: bounds memory whatever the tree size
BATCH_FOLDERS = 64
BATCH_FILES = 5000


def _pack(item: Listing | FolderError) -> tuple[Any, ...]:
    """Plain tuples pickle five times faster than NamedTuples and dataclasses."""
    if isinstance(item, FolderError):
        return (item.relpath, item.reason)
    files = None if item.files is None else [tuple(f) for f in item.files]
    return (item.relpath, files, item.issues, item.signature, item.file_count)


def _unpack(t: tuple[Any, ...]) -> Listing | FolderError:
    if len(t) == 2:
        return FolderError(t[0], t[1])
    relpath, files, issues, signature, count = t
    if files is None:
        return Listing(relpath, None, issues, signature, count)
    return Listing(relpath, [_new_tuple(FileStat, f) for f in files], issues, signature)


_new_tuple = tuple.__new__  # FileStat._make without its classmethod call and length check: 100,000 calls add up


def _worker(root: bytes, accept: Accept, known: Known | None, tasks: Any, results: Any, pending: Any,
            workers: int, parent: int) -> None:
    """Walk folders from ``tasks``; ``pending`` counts folders queued or being walked, by everyone.
    Whoever brings it to zero tells all workers to stop; each then sends "exit" after its last listing."""
    from ..procs import die_with_parent
    from .local import LocalStorage

    die_with_parent(parent)

    storage = LocalStorage(root, workers=1)
    while True:
        top = tasks.get()
        if top is None:
            results.put(("exit",))
            return
        stack = [top]
        batch: list[tuple[Any, ...]] = []
        files = 0
        while stack:
            rel = stack.pop()
            item, subdirs = storage.list_with_subdirs(rel, accept, known)
            batch.append(_pack(item))
            files += len(item.files or ()) if isinstance(item, Listing) else 0
            if len(batch) >= BATCH_FOLDERS or files >= BATCH_FILES:
                results.put(batch)
                batch, files = [], 0
            if len(subdirs) > 1 and tasks.empty():
                # Others may be idle: share all but one subfolder.
                with pending.get_lock():
                    pending.value += len(subdirs) - 1
                for sub in subdirs[1:]:
                    tasks.put(sub)
                stack.append(subdirs[0])
            else:
                stack.extend(reversed(subdirs))
        if batch:
            results.put(batch)
        with pending.get_lock():
            pending.value -= 1
            finished = pending.value == 0
        if finished:
            for _ in range(workers):
                tasks.put(None)


def walk_subtrees(storage: LocalStorage, tops: list[bytes], accept: Accept, known: Known | None,
                  workers: int) -> Iterator[Listing | FolderError]:
    """Walk each folder in ``tops`` and everything below it, using ``workers`` processes."""
    ctx = mp_context()
    tasks = ctx.Queue()
    results = ctx.Queue(RESULT_QUEUE_SIZE)
    pending = ctx.Value("q", len(tops))
    for top in tops:
        tasks.put(top)
    procs = [ctx.Process(target=_worker, args=(storage.root, accept, known, tasks, results, pending, workers, os.getpid()),
                         daemon=True) for _ in range(workers)]
    for p in procs:
        p.start()
    exited = 0
    try:
        while exited < workers:
            try:
                msg = results.get(timeout=1.0)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise OSError("a folder-walking process died; the walk is incomplete") from None
                continue
            if isinstance(msg, tuple):
                exited += 1
            else:
                for packed in msg:
                    yield _unpack(packed)
    finally:
        if exited < workers:  # stopped early (cancelled, error): workers may be blocked on a full queue
            for p in procs:
                p.terminate()
        for p in procs:
            p.join(timeout=10)
        for q in (tasks, results):
            q.close()
            q.cancel_join_thread()
