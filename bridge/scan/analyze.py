"""Reading a file's content: fingerprint, probe, thumbnail. Runs in worker processes during scans.

Nothing here touches the catalog; results go back to the scanner, which alone writes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MediaIdxError, ProbeError, ThumbnailError
from ..storage import Storage, StorageUnreachable, open_storage
from .fingerprint import fingerprint_fileobj, fingerprint_path

log = logging.getLogger(__name__)

THUMB_EXT = {"jpeg": "jpg", "webp": "webp"}


@dataclass(slots=True)
class Task:
    root_url: str
    relpath: bytes
    size: int
    kind: str
    fingerprint: bytes | None = None   # already known: not read again
    want_fingerprint: bool = True
    want_probe: bool = False
    want_thumb: bool = False
    thumbs_dir: str | None = None
    thumb_size: int = 320
    thumb_format: str = "jpeg"
    storage: Storage | None = None     # a remote root travels with its resolved options (workers connect once)
    want_analysis: bool = False        # shots, key frames, hero image (bridge/analysis; remote clips are read whole)


@dataclass(slots=True)
class Outcome:
    fingerprint: bytes | None = None
    probe: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None           # the file cannot be probed: catalogued as 'failed' with this reason
    vanished: bool = False             # gone before we could read it
    thumb: str | None = None           # path inside the thumbnail cache; "" when none can be made
    thumb_error: str | None = None
    unreachable: str | None = None     # the storage stopped answering: nothing is written, the next scan redoes it
    analysis: dict[str, Any] | None = None  # bridge.analysis.store.run_for_catalog's record


def thumb_relpath(fingerprint: bytes, fmt: str = "jpeg") -> str:
    """Thumbnails are keyed by content, so moves keep them and duplicates share one."""
    h = fingerprint.hex()
    return f"{h[:2]}/{h}.{THUMB_EXT.get(fmt, fmt)}"


_storages: dict[str, Storage] = {}


def _storage(url: str) -> Storage:
    st = _storages.get(url)
    if st is None:
        st = _storages[url] = open_storage(url)
    return st


def analyze(task: Task) -> Outcome:
    """Do what ``task`` asks; every failure becomes part of the Outcome, never an exception."""
    out = Outcome(fingerprint=task.fingerprint)
    try:
        storage = task.storage or _storage(task.root_url)
    except MediaIdxError as exc:  # a root URL or credentials setup that cannot be used: not this file's fault
        out.unreachable = str(exc)
        return out
    # What the storage's libraries raise for a server that refuses or fails (botocore's NoCredentialsError,
    # asyncssh's errors...) is the storage's state, not this file's: reported like an unreachable server.
    # What the server says about this one file (an SFTP read answered with a failure status, an SMB read status
    # such as a lock or a bad sector) arrives as OSError (RemoteStorage._file_error) and fails this file only;
    # statuses the backends do not know stay the server's. Anything else is a bug and is raised.
    root_storage = storage
    library_errors = storage.io_errors() if hasattr(storage, "io_errors") else (OSError,)
    local = storage.local_path(task.relpath)
    if local is None and hasattr(storage, "one_file"):
        storage = storage.one_file(task.relpath, task.size)  # one connection and one block cache for all reads
    try:
        if task.want_fingerprint and out.fingerprint is None:
            if local is not None:
                out.fingerprint = fingerprint_path(local, task.size)
            else:
                with storage.open(task.relpath) as fh:
                    out.fingerprint = fingerprint_fileobj(fh, task.size)
        if task.want_probe:
            _probe(task, storage, local, out)
        if task.want_thumb and out.error is None and task.kind != "audio":
            _thumb(task, storage, local, out)
        if task.want_analysis and out.error is None:
            _analysis(task, storage, local, out)
    except StorageUnreachable as exc:
        out.unreachable = exc.strerror or str(exc)
    except FileNotFoundError:
        out.vanished = True
    except OSError as exc:
        out.error = f"cannot read: {exc.strerror or exc}"
    except library_errors as exc:
        out.unreachable = (str(root_storage.unavailable(exc)) if hasattr(root_storage, "unavailable")
                           else str(exc))
    finally:
        if hasattr(storage, "release"):
            storage.release()
    return out


def _probe(task: Task, storage: Storage, local: bytes | None, out: Outcome) -> None:
    from ..probe import probe_file, summarize

    if task.size == 0:
        out.error = "empty file (0 bytes)"
        return
    try:
        if local is not None:
            probe = probe_file(local)
        else:
            name = task.relpath.rpartition(b"/")[2].decode("utf-8", "replace")
            with storage.open(task.relpath) as fh:
                probe = probe_file(fh, name=name)
    except ProbeError as exc:
        out.error = str(exc)
        return
    except (FileNotFoundError, OSError):
        raise
    except Exception as exc:  # a probe bug must not stop a scan of 100,000 files
        log.exception("probe failed on %r", task.relpath)
        out.error = f"probe failed: {type(exc).__name__}: {exc}"
        return
    out.probe = probe
    out.summary = summarize(probe)


def _thumb(task: Task, storage: Storage, local: bytes | None, out: Outcome) -> None:
    if out.fingerprint is None or not task.thumbs_dir:
        return
    rel = thumb_relpath(out.fingerprint, task.thumb_format)
    dest = Path(task.thumbs_dir) / rel
    if dest.exists():
        out.thumb = rel
        return
    kind = (out.summary or {}).get("kind") or task.kind
    video = next((s for s in (out.probe or {}).get("streams", []) if s.get("type") == "video"), None)
    rotation = float(video.get("rotation") or 0) if video is not None else None
    try:
        from ..thumbs import make_thumbnail

        if local is not None:
            make_thumbnail(local, dest, kind=kind, max_size=task.thumb_size, fmt=task.thumb_format,
                           rotation=rotation)
        else:
            with storage.open(task.relpath) as fh:
                make_thumbnail(fh, dest, kind=kind, max_size=task.thumb_size, fmt=task.thumb_format,
                               rotation=rotation)
        out.thumb = rel
    except ThumbnailError as exc:
        out.thumb = ""
        out.thumb_error = str(exc)
    except (FileNotFoundError, OSError):
        raise
    except Exception as exc:
        log.exception("thumbnail failed on %r", task.relpath)
        out.thumb = ""
        out.thumb_error = f"thumbnail failed: {type(exc).__name__}: {exc}"


def _analysis(task: Task, storage: Storage, local: bytes | None, out: Outcome) -> None:
    """Shots, key frames and hero of a video. A remote clip is decoded whole through the storage's file
    object (the one the probe and thumbnail used, tuned for sequential reads). A clip that cannot be
    analysed gets a record with its ``error``, which the scan reports as an issue; a vanished file or a
    storage that stopped answering goes to ``analyze`` as for the other steps."""
    if ((out.summary or {}).get("kind") or task.kind) != "video":
        return
    from ..analysis.store import run_for_catalog

    video = next((s for s in (out.probe or {}).get("streams", []) if s.get("type") == "video"), None)
    rotation = float(video.get("rotation") or 0) if video is not None else None  # probed already: not again
    try:
        if local is not None:
            out.analysis = run_for_catalog(local, out.fingerprint, task.thumbs_dir, threads=1,  # the pool fills the CPUs
                                           rotation=rotation)
        else:
            with storage.open(task.relpath) as fh:
                if hasattr(fh, "sequential"):
                    fh.sequential()  # every frame is decoded: large read-ahead instead of the probe's small one
                out.analysis = run_for_catalog(fh, out.fingerprint, task.thumbs_dir, threads=1, rotation=rotation,
                                               name=storage.display(task.relpath))
    except (FileNotFoundError, StorageUnreachable):
        raise
    except OSError as exc:  # probed and catalogued fine: only its analysis is missing, and said so
        out.analysis = {"version": 0, "error": f"cannot read: {exc.strerror or exc}"}
    except Exception as exc:  # an analysis bug fails one clip's analysis, not the scan
        log.exception("analysis failed on %r", task.relpath)
        out.analysis = {"version": 0, "error": f"analysis failed: {type(exc).__name__}: {exc}"}


def worker_init(parent: int | None = None) -> None:
    """Worker processes die with the scan that started them. FFmpeg logging stays at PyAV's default (None:
    no Python callback). Setting any level installs a callback that FFmpeg's frame threads call with the GIL
    while the main thread holds it freeing the decoder: a deadlock seen here (PyAV issues #751, #909)."""
    from ..procs import die_with_parent

    die_with_parent(parent)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
