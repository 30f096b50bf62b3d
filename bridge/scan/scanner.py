"""Sync a catalog with its roots by metadata: read only what changed, keep ids through moves.

One pass per root, folder by folder:

1. A folder whose listing hashes to the signature stored at the last scan is skipped without a query per
   file (that is what makes a rescan of an unchanged tree cost about one ``find``).
2. Otherwise each file is compared by size, mtime and inode: unchanged files are skipped; changed files
   are re-read; new files are looked up by size and content fingerprint among catalogued files, because
   a new path may be a file that moved here.
3. Catalogued files not listed any more are "vanished". After the walk, a vanished file whose content
   turned up elsewhere is a move (same row, so user data follows); the rest are marked missing, never
   deleted (``prune`` deletes).

Content work (fingerprint, probe, thumbnail) runs in worker processes; only this thread writes the
catalog, in short transactions, and a folder's signature is written only once the catalog matches it,
so a scan killed at any point leaves a consistent catalog and the next scan finishes the job.

A dry run takes exactly the same path, but hands every decision to a ``PlanRecorder`` instead of the
catalog writer, against a read-only connection: the plan is what a real scan would do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import Catalog
from ..catalog import assets as rows
from ..errors import Cancelled, MediaIdxError, RootUnavailableError
from ..mediatypes import kind_of
from ..models import PlanItem, ScanSummary
from ..procs import decoder_context
from ..storage import FileStat, FolderError, Listing, Storage, join, open_storage
from ..storage.base import BROKEN_SYMLINK
from .analyze import Outcome, Task, analyze, thumb_relpath, worker_init
from .lock import ScanLock

log = logging.getLogger(__name__)


@dataclass
class ScanOptions:
    probe: bool = True
    thumbs: bool = False
    dry_run: bool = False
    follow_symlinks: bool = False
    retry_failed: bool = False
    allow_empty: bool = False      # accept that a root with catalogued files is now empty
    jobs: int | None = None        # worker processes for probing; None = one per CPU
    thumb_size: int = 320
    thumb_format: str = "jpeg"
    analyze: bool = False          # shots, key frames and hero image of new/changed videos (bridge/analysis)


@dataclass
class ScanEvent:
    """Progress for CLIs, the ZeroMQ service and the dashboard."""

    phase: str                     # walk | work | resolve | done
    root: str
    folders: int = 0
    files: int = 0
    work_done: int = 0
    work_total: int = 0
    path: str = ""
    summary: ScanSummary | None = None


ProgressFn = Callable[[ScanEvent], None]


@dataclass(slots=True)
class _Folder:
    """A listed folder while the scan still owes the catalog something for it."""

    relpath: bytes
    folder_id: int | None          # None in a dry run for a folder the catalog has never seen
    signature: bytes
    file_count: int
    pending: int = 0               # content work not yet applied
    deferred: bool = False         # has vanished files or move candidates: settled after the walk
    listed: bool = False
    lost: bool = False             # some file could not be read (storage unreachable): never settled
    kept: bool = False             # a catalogued file listed only as an issue (not read, not followed) was kept
    fresh: bool = False            # new to the catalog: created by this scan, so it had no rows
    # (probed, thumbed) when this scan wrote every row of the folder itself (a new folder whose files all
    # went in unread): settling it then needs no query
    completeness: tuple[bool, bool] | None = None


@dataclass(slots=True)
class _Work:
    op: str                        # add | change | complete | identify
    folder: _Folder
    stat: FileStat
    kind: str
    asset_id: int | None = None
    counted: bool = True           # lands in added/changed/failed when applied (else it was unchanged)
    probe: bool = True             # False: an unchanged, probed file that only needs its thumbnail
    fingerprint: bytes | None = None


@dataclass
class _RootState:
    storage: Storage
    root_id: int | None
    summary: ScanSummary
    folders: dict[bytes, rows.FolderRow] = field(default_factory=dict)
    visited: set[bytes] = field(default_factory=set)
    unreadable: list[bytes] = field(default_factory=list)
    left_alone: set[bytes] = field(default_factory=set)  # entries listed as issues: still there
    deferred: list[_Folder] = field(default_factory=list)
    files_seen: int = 0
    complete: bool = True
    lost: str | None = None        # why the (remote) storage stopped answering; the scan stops at once
    not_read: int = 0


class Scanner:
    """Scans roots into one catalog. Use once per scan; ``cancel`` stops it cleanly from another thread."""

    COMMIT_SECONDS = 1.0
    COMMIT_OPS = 100_000

    def __init__(self, catalog: Catalog, thumbs_dir: Path, options: ScanOptions | None = None,
                 progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> None:
        self.catalog = catalog
        self.conn = catalog.conn
        self.thumbs_dir = Path(thumbs_dir)
        self.opts = options or ScanOptions()
        self.progress = progress
        self.cancel_event = cancel or threading.Event()
        self.dry = self.opts.dry_run or catalog.readonly
        self._executor: Executor | None = None
        self._inflight: dict[Future[Outcome], _Work] = {}
        self._in_tx = False
        self._ops = 0
        self._last_commit = time.monotonic()
        self._work_done = 0
        self._work_total = 0
        self._state_by_future: dict[Future[Outcome], _RootState] = {}
        self._max_inflight = 8
        self._plan_items: list[PlanItem] = []
        self._storages: dict[str, Storage] = {}     # this scan's roots by URL
        self._moved_away: set[int] = set()          # rows moved here from a root this scan reaches later
        self._mounted: dict[str, bool] = {}

    # -- public ------------------------------------------------------------------------------------------
    def scan(self, roots: Iterable[str | os.PathLike[str]]) -> ScanSummary:
        roots = [os.fspath(r) for r in roots]
        summary = ScanSummary(roots=[], dry_run=self.dry)
        self._plan_items = summary.plan
        started = time.monotonic()
        storages = []
        for root in roots:
            storage = open_storage(root, follow_symlinks=self.opts.follow_symlinks)
            summary.roots.append(storage.url)
            storages.append(storage)
        self._storages = {s.url: s for s in storages}
        lock = contextlib.nullcontext() if self.dry else ScanLock(self.catalog.path)
        with lock:
            if not self.dry:
                self.conn.execute("UPDATE scans SET status = 'interrupted' WHERE status = 'running'")
            self._next_id = self._first_new_id = rows.next_asset_id(self.conn)
            try:
                for storage in storages:
                    self._scan_root(storage, summary)
            except KeyboardInterrupt:
                summary.complete = False
                self._shutdown(cancel=True)
                self._commit()
                raise
            finally:
                self._shutdown(cancel=not summary.complete)
                self._commit()
        summary.elapsed = time.monotonic() - started
        self._emit(ScanEvent("done", ",".join(summary.roots), summary=summary))
        return summary

    def cancel(self) -> None:
        self.cancel_event.set()

    # -- one root ----------------------------------------------------------------------------------------
    def _scan_root(self, storage: Storage, summary: ScanSummary) -> None:
        try:
            storage.check()  # first: it refuses a root whose path is not UTF-8, which the catalog cannot hold
            self._check_not_inside_a_root(storage)
            root_id = rows.find_root(self.conn, storage.url)
            inside = self._roots_inside(storage) if root_id is None else []
        except RootUnavailableError as exc:
            summary.add_issue(storage.url, str(exc).removeprefix(storage.url + ": "))
            summary.complete = False
            if len(summary.roots) == 1:
                raise
            return
        if inside and self.dry:
            # The plan must show the files of those roots as what they are (catalogued, not new): adopt them
            # in a private copy of the catalog and plan on that.
            self.catalog.use_private_copy()
            self.conn = self.catalog.conn
            root_id = self._adopt(storage, inside, summary)
        scan_id = None
        if not self.dry:
            self._begin()
            try:
                if inside:
                    root_id = self._adopt(storage, inside, summary)  # same transaction as the new root
                root_id = root_id or rows.ensure_root(self.conn, storage.url)
                scan_id = self.conn.execute(
                    "INSERT INTO scans (root_id, started_at, status) VALUES (?, ?, 'running')",
                    (root_id, time.time())).lastrowid
            except BaseException:
                self.conn.execute("ROLLBACK")  # no half-adopted root: all of it or nothing
                self._in_tx = False
                raise
            self._commit()
        st = _RootState(storage, root_id, summary, folders=rows.load_folders(self.conn, root_id))
        self._create_temp_tables()
        status = "cancelled"
        try:
            self._walk(st)
            self._drain()
            self._check_not_emptied(st)
            self._resolve(st)
            self._drain()
            self._settle_deferred(st)
            status = "done"
            if st.lost:
                status = "incomplete"
                st.summary.add_issue(storage.url, f"the storage stopped answering ({st.lost}): the scan stopped, "
                                     f"{st.not_read} files not read; the next scan resumes")
        except Cancelled:
            st.complete = False
        except RootUnavailableError as exc:
            # e.g. an unmounted share among several roots: reported like a missing root, the others are scanned
            status, st.complete = "failed", False
            if len(summary.roots) == 1:
                raise
            summary.add_issue(storage.url, str(exc).removeprefix(storage.url + ": "))
        except MediaIdxError:
            status = "failed"
            raise
        finally:
            summary.complete = summary.complete and st.complete
            if scan_id is not None:
                self._shutdown(cancel=status != "done")
                self._begin()
                self.conn.execute(
                    "UPDATE scans SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                    (time.time(), status, _summary_json(summary), scan_id))
                if status == "done":
                    self.conn.execute("UPDATE roots SET last_scan_at = ?, last_scan = ? WHERE id = ?",
                                      (time.time(), _summary_json(summary), root_id))
                self._commit()

    def _local_roots(self) -> list[tuple[int, str, bytes]]:
        """(id, url, real path) of the catalog's local roots, symlinks resolved: what a new root is checked
        against, both ways (inside one of them, or holding some)."""
        return [(root_id, url, os.path.realpath(os.fsencode(url)))
                for root_id, url in self.conn.execute("SELECT id, url FROM roots ORDER BY url").fetchall()
                if "://" not in url]

    def _roots_inside(self, storage: Storage) -> list[tuple[int, str, bytes]]:
        """Catalog roots inside this new local root, as (root id, url, folder path inside this root): a parent
        folder scanned as a root (``scan /nas`` after ``scan /nas/jobs``). Only folders the walk reaches as
        themselves (no symlink on the way) count; roots nested in each other (catalogued twice already) are
        refused, as merging their duplicate rows is not something a scan should guess."""
        local = storage.local_path(b"")
        if local is None:
            return []
        real = os.path.realpath(local).rstrip(b"/") + b"/"
        found = []
        for root_id, url, other in self._local_roots():
            if not other.startswith(real):
                continue
            prefix = other[len(real):]
            parts = prefix.split(b"/")
            if any(os.path.islink(os.path.join(local, *parts[:i + 1])) for i in range(len(parts))):
                continue  # reached through a link: the walk does not go there as this path
            found.append((root_id, url, prefix))
        for i, (_, url, prefix) in enumerate(found):
            for _, other_url, other_prefix in found[i + 1:]:
                if (other_prefix == prefix or other_prefix.startswith(prefix + b"/")
                        or prefix.startswith(other_prefix + b"/")):  # the same folder twice, or one in the other
                    raise RootUnavailableError(f"{storage.url}: holds the catalog roots {url} and {other_url}, one "
                                               "inside the other (or the same folder twice); `mediaidx roots "
                                               "forget` one of them first")
        return found

    def _adopt(self, storage: Storage, inside: list[tuple[int, str, bytes]], summary: ScanSummary) -> int:
        """Make ``storage`` a root holding the roots ``inside`` as folders (rows.adopt_root); its root id."""
        root_id = rows.ensure_root(self.conn, storage.url)
        for old_id, url, prefix in inside:
            n = rows.adopt_root(self.conn, old_id, root_id, storage.url, prefix)
            summary.plan.append(PlanItem("adopt", storage.display(prefix),
                                         reason=f"the root {url} becomes this folder of {storage.url}; its {n} "
                                                "assets keep their ids, ratings, tags and notes"))
        return root_id

    def _check_not_inside_a_root(self, storage: Storage) -> None:
        """A local folder that is a catalog root under another name (a symlink to it) or lies inside one would
        be indexed a second time: every file twice, ratings and tags split between the copies. Refused."""
        local = storage.local_path(b"")
        if local is None or rows.find_root(self.conn, storage.url) is not None:
            return
        real = os.path.realpath(local)
        for _root_id, url, other in self._local_roots():
            if other == real:
                raise RootUnavailableError(f"{storage.url}: the same folder as the catalog's root {url} "
                                           f"(through a symbolic link): scan {url}")
            if real.startswith(other.rstrip(b"/") + b"/"):
                raise RootUnavailableError(f"{storage.url}: inside the catalog's root {url}, which would index it "
                                           f"twice: scan {url} (its folders are scanned with it)")

    def _create_temp_tables(self) -> None:
        self.conn.executescript(
            "DROP TABLE IF EXISTS temp.vanished; DROP TABLE IF EXISTS temp.candidates;"
            "CREATE TEMP TABLE vanished (asset_id INTEGER PRIMARY KEY, relpath BLOB);"
            "CREATE TEMP TABLE candidates (id INTEGER PRIMARY KEY, folder BLOB, name BLOB, kind TEXT,"
            " size INTEGER, mtime_ns INTEGER, inode INTEGER, device INTEGER, fingerprint BLOB, replaces INTEGER);")

    # -- walking -----------------------------------------------------------------------------------------
    def _walk(self, st: _RootState) -> None:
        # Retrying failed files means opening every folder that has some: no shortcut then.
        known = None if self.opts.retry_failed else {
            rel: row.signature for rel, row in st.folders.items() if row.present and row.signature}
        for item in st.storage.walk(kind_of, known):
            self._check_cancel()
            if isinstance(item, FolderError):
                st.unreadable.append(item.relpath)
                if item.reason.startswith("connection lost"):
                    st.lost, st.complete = st.lost or item.reason, False
                st.summary.skipped += 1
                st.summary.add_issue(st.storage.display(item.relpath), f"folder not read: {item.reason}")
                self._plan("fail", st.storage.display(item.relpath), reason=f"folder not read: {item.reason}")
                continue
            self._folder(st, item)
            self._poll()
            self._maybe_commit()
            if st.lost and not isinstance(item, FolderError):
                break  # the storage is gone: keep what was indexed, report the rest

    def _folder(self, st: _RootState, listing: Listing) -> None:
        # st.folders holds every folder of this root and only this scan writes them (scan lock), so a folder
        # not in it, listed for the first time, has no rows: no lookups for it (the first index of a tree)
        fresh = listing.relpath not in st.visited
        st.visited.add(listing.relpath)
        st.files_seen += listing.file_count
        for path, reason in listing.issues:
            st.summary.skipped += 1
            st.summary.add_issue(st.storage.display(path), reason)
            if reason != BROKEN_SYMLINK:
                st.left_alone.add(path)
        self._emit(ScanEvent("walk", st.storage.url, folders=len(st.visited), files=st.files_seen,
                             work_done=self._work_done, work_total=self._work_total,
                             path=st.storage.display(listing.relpath)))
        row = st.folders.get(listing.relpath)
        if (row is not None and row.present and row.signature == listing.signature and not self.opts.retry_failed
                and (row.probed or not self.opts.probe) and (row.thumbed or not self.opts.thumbs)):
            st.summary.unchanged += row.file_count
            return
        if listing.files is None:  # unchanged, but owed a probe or thumbnails: list it for real
            again = st.storage.list_folder(listing.relpath, kind_of)
            if isinstance(again, FolderError):
                st.unreadable.append(again.relpath)
                st.summary.add_issue(st.storage.display(again.relpath), f"folder not read: {again.reason}")
                return
            listing = again
        files = listing.files or []
        if row is None and not files:
            return  # an empty folder we never knew: nothing to record
        folder_id = row.id if row else None
        fresh = fresh and row is None
        if folder_id is None and not self.dry:
            folder_id = (rows.insert_folder if fresh else rows.ensure_folder)(
                self.conn, st.root_id, listing.relpath)  # type: ignore[arg-type]
            self._ops += 1
        folder = _Folder(listing.relpath, folder_id, listing.signature, len(files), fresh=fresh)
        known = rows.folder_assets(self.conn, folder_id) if folder_id is not None and not fresh else {}
        new: list[FileStat] = [] if known else files
        for f in files if known else ():
            old = known.pop(f.name, None)
            if old is None:
                new.append(f)
            else:
                self._known_file(st, folder, f, old)
        if new:
            self._new_files(st, folder, new)
        for old in known.values():
            if old.status == "missing":
                continue
            if join(folder.relpath, old.name) in st.left_alone:  # e.g. a symlink a scan without
                folder.kept = True                               # --follow-symlinks does not read: not gone
                continue
            self._vanish(folder, old)
        folder.listed = True
        if folder.deferred:
            st.deferred.append(folder)
        else:
            self._maybe_settle(folder)

    def _known_file(self, st: _RootState, folder: _Folder, f: FileStat, old: rows.AssetRow) -> None:
        same = old.size == f.size and old.mtime_ns == f.mtime_ns
        path = st.storage.display(join(folder.relpath, f.name))
        if old.status == "missing":
            if same:
                st.summary.changed += 1
                self._plan("restore", path, old.id)
                if not self.dry:
                    rows.restore_asset(self.conn, old.id)
                    self._ops += 1
                self._complete_if_needed(st, folder, f, old)
            else:
                self._submit(st, _Work("change", folder, f, old.kind, old.id))
            return
        if same and old.inode != f.inode and old.fingerprint is not None:
            # Same size and time, new inode: a restore or a remount. Compare content before re-reading it all.
            out = analyze(self._task(st, join(folder.relpath, f.name), f, old.kind, fingerprint_only=True))
            if out.unreachable:
                self._lose(st, folder, join(folder.relpath, f.name), out.unreachable, counted=True)
                return
            if out.fingerprint == old.fingerprint:
                st.summary.unchanged += 1
                if not self.dry:
                    rows.update_identity(self.conn, old.id, f)
                    self._ops += 1
                self._complete_if_needed(st, folder, f, old)
                return
            same = False
        if not same:
            deferred, fingerprint = self._replaced(st, folder, f, old)
            if not deferred:  # a change; the fingerprint read to tell is not read again
                self._submit(st, _Work("change", folder, f, old.kind, old.id), fingerprint=fingerprint)
            return
        if old.status == "failed" and self.opts.retry_failed:
            self._submit(st, _Work("change", folder, f, old.kind, old.id))
            return
        st.summary.unchanged += 1
        self._complete_if_needed(st, folder, f, old)

    def _complete_if_needed(self, st: _RootState, folder: _Folder, f: FileStat, old: rows.AssetRow) -> None:
        want_probe = self.opts.probe and old.status == "unprobed"
        want_thumb = (self.opts.thumbs and old.thumb is None and old.kind != "audio"
                      and old.status in ("ok", "unprobed"))
        if want_probe or want_thumb:
            self._submit(st, _Work("complete", folder, f, old.kind, old.id, counted=False, probe=want_probe,
                                   fingerprint=old.fingerprint))

    def _new_files(self, st: _RootState, folder: _Folder, new: list[FileStat]) -> None:
        """New paths: plain adds, unless a catalogued file has the same size (then it may have moved here)."""
        # Only rows from before this scan can be where a file moved from (none on a first index).
        sizes = sorted({f.size for f in new if f.size}) if self._first_new_id > 1 else []
        known_sizes: dict[int, bool] = {}  # size -> some row of that size has a fingerprint
        for i in range(0, len(sizes), 500):
            chunk = sizes[i:i + 500]
            known_sizes.update(self.conn.execute(
                f"SELECT size, max(fingerprint IS NOT NULL) FROM assets WHERE size IN ({','.join('?' * len(chunk))})"
                " AND id < ? GROUP BY size", [*chunk, self._first_new_id]).fetchall())
        content = self.opts.probe or self.opts.thumbs
        if not known_sizes and not content:
            self._add_without_reading(st, folder, new)  # nothing can have moved here, nothing to read
            return
        plain: list[FileStat] = []
        for f in new:
            if f.size in known_sizes:
                self._new_file(st, folder, f, kind_of(f.name) or "video", known_sizes[f.size])
            elif content and f.size and not self.dry:
                self._submit(st, _Work("add", folder, f, kind_of(f.name) or "video"))
            else:
                plain.append(f)
        if plain:
            self._add_without_reading(st, folder, plain)

    def _add_without_reading(self, st: _RootState, folder: _Folder, files: list[FileStat]) -> None:
        """Metadata-only adds (and empty files), written in one batch: the first index of a big tree."""
        if self.dry:
            for f in files:
                self._dry_work(st, _Work("add", folder, f, kind_of(f.name) or "video"),
                               join(folder.relpath, f.name), None)
            return
        empty = rows.insert_unread(self.conn, folder.folder_id, self._next_id, files,  # type: ignore[arg-type]
                                   rows.fts_path(st.storage.url, folder.relpath))
        if folder.fresh and len(files) == folder.file_count:
            # a new folder, every file of it just written unread: unprobed unless empty, none owes a thumbnail
            folder.completeness = (len(empty) == len(files), True)
        self._next_id += len(files)
        self._ops += len(files)
        st.summary.added += len(files) - len(empty)
        st.summary.failed += len(empty)
        for f in files if empty else ():
            if not f.size:
                st.summary.add_issue(st.storage.display(join(folder.relpath, f.name)), "empty file (0 bytes)")

    def _new_file(self, st: _RootState, folder: _Folder, f: FileStat, kind: str, has_fingerprints: bool) -> None:
        """A new path with the size of a catalogued file: a move if identity or content matches."""
        fingerprint = None
        if has_fingerprints:
            out = analyze(self._task(st, join(folder.relpath, f.name), f, kind, fingerprint_only=True))
            if out.unreachable:
                self._lose(st, folder, join(folder.relpath, f.name), out.unreachable, counted=True)
                return
            if out.vanished:
                return
            fingerprint = out.fingerprint
        match = self.conn.execute(
            "SELECT 1 FROM assets WHERE size = ? AND id < ? AND ((device = ? AND inode = ? AND mtime_ns = ?)"
            " OR (fingerprint IS NOT NULL AND fingerprint = ?)) LIMIT 1",
            (f.size, self._first_new_id, f.device, f.inode, f.mtime_ns, fingerprint)).fetchone()
        if match is None:
            self._submit(st, _Work("add", folder, f, kind), fingerprint=fingerprint)
            return
        self.conn.execute(
            "INSERT INTO temp.candidates (folder, name, kind, size, mtime_ns, inode, device, fingerprint)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (folder.relpath, f.name, kind, f.size, f.mtime_ns, f.inode, f.device, fingerprint))
        folder.deferred = True

    def _replaced(self, st: _RootState, folder: _Folder, f: FileStat, old: rows.AssetRow
                  ) -> tuple[bool, bytes | None]:
        """Another file now has this name (``mv b.mov a.mov``, two names swapped): when it is a catalogued file
        that moved here, the row of the file that had the name is treated as vanished and the listed file as a
        move candidate, so each row, and its rating, tags and notes, stays with its content. An edit in place
        (same inode) or new content is a plain change, as before. (True when deferred to the resolve step, the
        content fingerprint if it had to be read.) The caller has dealt with missing rows already."""
        if old.inode is None or f.inode is None or old.inode == f.inode or old.device != f.device or not f.size:
            return False, None
        has_fp = self.conn.execute(
            "SELECT max(fingerprint IS NOT NULL) FROM assets WHERE size = ? AND id < ? AND id != ?",
            (f.size, self._first_new_id, old.id)).fetchone()[0]
        if has_fp is None:
            return False, None  # no other catalogued file of this size: new content for this row
        fingerprint = None
        if has_fp:
            out = analyze(self._task(st, join(folder.relpath, f.name), f, old.kind, fingerprint_only=True))
            if out.unreachable or out.vanished:
                return False, None  # the change path deals with it as before
            fingerprint = out.fingerprint
        match = self.conn.execute(
            "SELECT 1 FROM assets WHERE size = ? AND id < ? AND id != ? AND ((device = ? AND inode = ? AND mtime_ns = ?)"
            " OR (fingerprint IS NOT NULL AND fingerprint = ?)) LIMIT 1",
            (f.size, self._first_new_id, old.id, f.device, f.inode, f.mtime_ns, fingerprint)).fetchone()
        if match is None:
            return False, fingerprint
        self.conn.execute(
            "INSERT INTO temp.candidates (folder, name, kind, size, mtime_ns, inode, device, fingerprint, replaces)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (folder.relpath, f.name, old.kind, f.size, f.mtime_ns, f.inode, f.device, fingerprint, old.id))
        self._vanish(folder, old)
        return True, fingerprint

    def _vanish(self, folder: _Folder, old: rows.AssetRow) -> None:
        self.conn.execute("INSERT OR IGNORE INTO temp.vanished (asset_id, relpath) VALUES (?, ?)",
                          (old.id, join(folder.relpath, old.name)))
        folder.deferred = True

    # -- content work ------------------------------------------------------------------------------------
    def _task(self, st: _RootState, relpath: bytes, f: FileStat, kind: str, *, fingerprint: bytes | None = None,
              fingerprint_only: bool = False, probe: bool = False, thumb: bool = False) -> Task:
        return Task(
            root_url=st.storage.url, relpath=relpath, size=f.size, kind=kind, fingerprint=fingerprint,
            want_fingerprint=fingerprint_only or probe or thumb, want_probe=probe and not fingerprint_only,
            want_thumb=thumb and not fingerprint_only, thumbs_dir=str(self.thumbs_dir),
            thumb_size=self.opts.thumb_size, thumb_format=self.opts.thumb_format,
            storage=st.storage if st.storage.local_path(b"") is None else None)

    def _lose(self, st: _RootState, folder: _Folder, relpath: bytes, reason: str, *, counted: bool) -> None:
        """A file the storage could not deliver (it stopped answering): nothing is written for it, its folder
        is not settled, and the scan stops, so the next scan redoes exactly this."""
        if st.lost is None:
            st.lost = reason
            log.warning("%s: the storage stopped answering: %s", st.storage.url, reason)
        st.complete = False
        folder.lost = True
        st.not_read += 1
        if counted:
            st.summary.skipped += 1
        st.summary.add_issue(st.storage.display(relpath), "not read: the storage stopped answering")

    def _submit(self, st: _RootState, work: _Work, *, fingerprint: bytes | None = None) -> None:
        relpath = join(work.folder.relpath, work.stat.name)
        fingerprint = fingerprint or work.fingerprint
        if st.lost:
            self._lose(st, work.folder, relpath, st.lost, counted=work.counted)
            return
        if self.dry:
            self._dry_work(st, work, relpath, fingerprint)
            return
        if work.stat.size == 0 and work.op != "complete":
            self._apply(st, work, Outcome(error="empty file (0 bytes)"))
            return
        want_probe = self.opts.probe and work.probe
        want_thumb = self.opts.thumbs and work.kind != "audio"
        if not (want_probe or want_thumb):
            self._apply(st, work, Outcome(fingerprint=fingerprint))  # metadata only: nothing to read
            return
        task = self._task(st, relpath, work.stat, work.kind, fingerprint=fingerprint, probe=want_probe,
                          thumb=want_thumb)
        task.want_analysis = self.opts.analyze and work.kind == "video" and work.op in ("add", "change")
        work.folder.pending += 1
        self._work_total += 1
        executor = self._get_executor()
        if executor is None:
            self._apply(st, work, analyze(task))
            return
        while len(self._inflight) >= self._max_inflight:
            self._poll(block=True)
        fut = executor.submit(analyze, task)
        self._inflight[fut] = work
        self._state_by_future[fut] = st

    def _get_executor(self) -> Executor | None:
        if self._executor is None:
            jobs = self.opts.jobs or os.cpu_count() or 1
            if jobs <= 1:
                return None
            ctx = decoder_context()
            self._executor = ProcessPoolExecutor(
                jobs, mp_context=ctx, initializer=worker_init,
                initargs=(os.getpid() if ctx.get_start_method() == "fork" else None,))
            self._max_inflight = jobs * 4
        return self._executor

    def _poll(self, block: bool = False) -> None:
        if not self._inflight:
            return
        done, _ = wait(list(self._inflight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in done:
            work = self._inflight.pop(fut)
            st = self._state_by_future.pop(fut)
            try:
                out = fut.result()
            except Exception as exc:  # a crashed worker (segfault in a decoder) fails one file, not the scan
                log.warning("worker failed on %r: %s", work.stat.name, exc)
                out = Outcome(error=f"probe crashed: {type(exc).__name__}")
                if type(exc).__name__ == "BrokenProcessPool":
                    self._executor = None
            self._apply(st, work, out)
        self._maybe_commit()

    def _drain(self) -> None:
        while self._inflight:
            self._check_cancel()
            self._poll(block=True)

    def _apply(self, st: _RootState, work: _Work, out: Outcome) -> None:
        """Write one finished piece of content work (main thread only)."""
        folder = work.folder
        relpath = join(folder.relpath, work.stat.name)
        path = st.storage.display(relpath)
        if out.unreachable:
            self._lose(st, folder, relpath, out.unreachable, counted=work.counted)
        elif out.vanished:
            if work.asset_id is not None:
                self.conn.execute("INSERT OR IGNORE INTO temp.vanished (asset_id, relpath) VALUES (?, ?)",
                                  (work.asset_id, relpath))
                folder.deferred = True
                if folder.listed and folder not in st.deferred:
                    st.deferred.append(folder)
        else:
            probed = self.opts.probe or out.error is not None
            if out.thumb_error:
                st.summary.add_issue(path, out.thumb_error)
            if work.op == "add":
                rows.insert_assets(self.conn, [rows.NewAsset(
                    self._next_id, folder.folder_id, work.stat, work.kind, out.fingerprint, out.probe,  # type: ignore[arg-type]
                    out.summary, out.error, out.thumb)], rows.fts_path(st.storage.url, folder.relpath))
                self._next_id += 1
            elif work.op == "change":
                rows.update_content(self.conn, work.asset_id, stat=work.stat, fingerprint=out.fingerprint,  # type: ignore[arg-type]
                                    probe=out.probe, summary=out.summary, error=out.error, thumb=out.thumb,
                                    probed=probed)
            else:
                rows.complete_content(self.conn, work.asset_id, fingerprint=out.fingerprint,  # type: ignore[arg-type]
                                      probe=out.probe, summary=out.summary, error=out.error, thumb=out.thumb,
                                      probed=out.probe is not None or out.error is not None)
            if out.analysis is not None:  # shots, key frames, hero (scan --analyze)
                from ..analysis.store import write_analysis

                write_analysis(self.conn, self._next_id - 1 if work.op == "add" else work.asset_id,  # type: ignore[arg-type]
                               out.fingerprint, out.analysis)
                if out.analysis.get("error"):
                    st.summary.add_issue(path, f"not analysed: {out.analysis['error']}")
            self._ops += 1
            self._count(st.summary, work, out, path)
        if folder.pending:
            folder.pending -= 1
            self._work_done += 1
            self._emit(ScanEvent("work", st.storage.url, folders=len(st.visited), files=st.files_seen,
                                 work_done=self._work_done, work_total=self._work_total, path=path))
        self._maybe_settle(folder)

    @staticmethod
    def _count(summary: ScanSummary, work: _Work, out: Outcome, path: str) -> None:
        """Each listed file lands in exactly one of added/changed/moved/unchanged/failed."""
        if out.error:
            summary.failed += 1
            summary.add_issue(path, out.error)
            if not work.counted:
                summary.unchanged -= 1  # counted unchanged when listed; it turned out not to be readable
        elif work.counted:
            if work.op == "add":
                summary.added += 1
            else:
                summary.changed += 1

    def _dry_work(self, st: _RootState, work: _Work, relpath: bytes, fingerprint: bytes | None) -> None:
        """What a real scan would do with this file, without probing or writing anything."""
        path = st.storage.display(relpath)
        if work.stat.size == 0 and work.op in ("add", "change"):
            st.summary.failed += 1
            self._plan("fail", path, work.asset_id, kind=work.kind, reason="empty file (0 bytes)")
            return
        if work.op == "add":
            st.summary.added += 1
            self._plan("add", path, kind=work.kind)
        elif work.op == "change":
            st.summary.changed += 1
            self._plan("change", path, work.asset_id, kind=work.kind)
        elif self.opts.probe and work.probe:
            self._plan("probe", path, work.asset_id, kind=work.kind)
        if self.opts.thumbs and work.kind != "audio":
            if fingerprint is None:
                out = analyze(self._task(st, relpath, work.stat, work.kind, fingerprint_only=True))
                fingerprint = out.fingerprint
            if fingerprint is not None:
                dest = self.thumbs_dir / thumb_relpath(fingerprint, self.opts.thumb_format)
                if not dest.exists():
                    self._plan("write", str(dest), work.asset_id, reason=f"thumbnail of {path}")
        if self.opts.analyze and work.kind == "video" and work.op in ("add", "change"):
            self._plan("analyze", path, work.asset_id, kind=work.kind, reason="shots, key frames, hero image")

    # -- after the walk ----------------------------------------------------------------------------------
    def _check_not_emptied(self, st: _RootState) -> None:
        """An unmounted share often leaves an empty mount point: never mark a whole root missing for that."""
        if st.files_seen or st.unreadable or st.left_alone or st.root_id is None or self.opts.allow_empty:
            return  # (entries listed but left alone, such as links not followed, are not an empty mount point)
        present = self.conn.execute(
            "SELECT count(*) FROM assets a JOIN folders f ON f.id = a.folder_id"
            " WHERE f.root_id = ? AND a.status != 'missing'", (st.root_id,)).fetchone()[0]
        if present:
            raise RootUnavailableError(
                f"{st.storage.url}: the folder is empty but the catalog holds {present} files under it; "
                "is the share mounted? (scan with --allow-empty to mark them all missing)")

    def _resolve(self, st: _RootState) -> None:
        self._emit(ScanEvent("resolve", st.storage.url, folders=len(st.visited), files=st.files_seen))
        if st.complete:
            self._vanish_unvisited(st)
        taken: set[int] = set(self._moved_away)
        cands = self.conn.execute(
            "SELECT id, folder, name, kind, size, mtime_ns, inode, device, fingerprint, replaces FROM temp.candidates"
            " ORDER BY id").fetchall()
        folders_by_rel = {f.relpath: f for f in st.deferred}
        # candidates that took over a catalogued file's name and did not move from anywhere: after all moves
        unmatched: list[tuple[_Folder, FileStat, str, bytes | None, int]] = []
        for _cid, folder_rel, name, kind, size, mtime_ns, inode, device, fingerprint, replaces in cands:
            self._check_cancel()
            stat = FileStat(name, size, mtime_ns, inode, device)
            folder = folders_by_rel[folder_rel]
            old = self._move_source(size, mtime_ns, inode, device, fingerprint,
                                    taken if replaces is None else taken | {replaces})
            if old is None and replaces is not None:
                unmatched.append((folder, stat, kind, fingerprint, replaces))
                continue
            if old is None:
                old = self._gone_from_a_later_root(st, size, mtime_ns, inode, device, fingerprint, taken)
                if old is not None:
                    self._moved_away.add(old[0])
            if old is None:
                self._submit(st, _Work("add", folder, stat, kind), fingerprint=fingerprint)
                continue
            if replaces is not None and replaces not in taken and not self.dry:
                rows.rename_displaced(self.conn, replaces)  # its name is this file's now (same transaction)
            old_id, old_rel = old
            taken.add(old_id)
            self.conn.execute("DELETE FROM temp.vanished WHERE asset_id = ?", (old_id,))
            st.summary.moved += 1
            new_path = st.storage.display(join(folder_rel, name))
            self._plan("move", new_path, old_id, source=old_rel, kind=kind)
            if not self.dry:
                rows.move_asset(self.conn, old_id, folder_id=folder.folder_id, name=name, stat=stat,  # type: ignore[arg-type]
                                fts_path=rows.fts_path(st.storage.url, folder_rel))
                self._ops += 1
                self._maybe_commit()
        self._fall_back(st, unmatched, taken)
        if self._moved_away:  # (dry runs) rows an earlier root of this scan took over are not missing here
            self.conn.executemany("DELETE FROM temp.vanished WHERE asset_id = ?", ((i,) for i in self._moved_away))
        gone = self.conn.execute("SELECT asset_id, relpath FROM temp.vanished ORDER BY relpath").fetchall()
        st.summary.missing += len(gone)
        for asset_id, relpath in gone:
            self._plan("missing", st.storage.display(relpath), asset_id)
        if not self.dry and gone:
            rows.mark_missing(self.conn, (a for a, _ in gone))
            self._ops += len(gone)

    def _fall_back(self, st: _RootState, unmatched: list[tuple[_Folder, FileStat, str, bytes | None, int]],
                   taken: set[int]) -> None:
        """A file that took over a name but did not move from anywhere: new content for the row that had the
        name (as for an edit in place), or a new asset when that row moved away itself."""
        for folder, stat, kind, fingerprint, replaces in unmatched:
            if replaces in taken:
                self._submit(st, _Work("add", folder, stat, kind), fingerprint=fingerprint)
                continue
            taken.add(replaces)
            self.conn.execute("DELETE FROM temp.vanished WHERE asset_id = ?", (replaces,))
            self._submit(st, _Work("change", folder, stat, kind, replaces), fingerprint=fingerprint)
        unmatched.clear()

    def _gone_from_a_later_root(self, st: _RootState, size: int, mtime_ns: int, inode: int | None,
                                device: int | None, fingerprint: bytes | None, taken: set[int]
                                ) -> tuple[int, str] | None:
        """A file moved here from another root of this scan that is scanned after this one (``mediaidx scan``
        goes through the roots in name order): its row, when that root is there and its file is gone."""
        if len(self._storages) < 2:
            return None
        for asset_id, folder_rel, name, root_url in self.conn.execute(
                "SELECT a.id, f.relpath, a.name, r.url FROM assets a JOIN folders f ON f.id = a.folder_id"
                " JOIN roots r ON r.id = f.root_id"
                " WHERE a.size = ? AND ((a.device = ? AND a.inode = ? AND a.mtime_ns = ?)"
                " OR (a.fingerprint IS NOT NULL AND a.fingerprint = ?)) AND a.status != 'missing' AND a.id < ?"
                " ORDER BY a.id", (size, device, inode, mtime_ns, fingerprint, self._first_new_id)):
            other = self._storages.get(root_url)
            if asset_id in taken or other is None or other is st.storage or not self._is_mounted(other):
                continue
            relpath = join(folder_rel, name)
            try:
                other.stat(relpath)
            except FileNotFoundError:
                return asset_id, other.display(relpath)
            except OSError:
                continue  # cannot tell: not a move
        return None

    def _is_mounted(self, storage: Storage) -> bool:
        """The root answers and is not an empty mount point: only then does a file gone from it count as moved
        (files copied off a share that is now unmounted stay where they are in the catalog)."""
        if storage.url not in self._mounted:
            try:
                storage.check()
                local = storage.local_path(b"")
                mounted = local is None or bool(os.listdir(local))
            except (RootUnavailableError, OSError):
                mounted = False
            self._mounted[storage.url] = mounted
        return self._mounted[storage.url]

    def _move_source(self, size: int, mtime_ns: int, inode: int | None, device: int | None,
                     fingerprint: bytes | None, taken: set[int]) -> tuple[int, str] | None:
        """A catalogued file that vanished (now or before) with this content: where the file came from."""
        for asset_id, folder_rel, name, root_url in self.conn.execute(
                "SELECT a.id, f.relpath, a.name, r.url FROM assets a JOIN folders f ON f.id = a.folder_id"
                " JOIN roots r ON r.id = f.root_id"
                " WHERE a.size = ? AND ((a.device = ? AND a.inode = ? AND a.mtime_ns = ?)"
                " OR (a.fingerprint IS NOT NULL AND a.fingerprint = ?))"
                " AND (a.status = 'missing' OR a.id IN (SELECT asset_id FROM temp.vanished))"
                " ORDER BY a.status = 'missing', a.id", (size, device, inode, mtime_ns, fingerprint)):
            if asset_id not in taken:
                rel = join(folder_rel, name).decode("utf-8", "backslashreplace")
                return asset_id, f"{root_url.rstrip('/')}/{rel}"
        return None

    def _vanish_unvisited(self, st: _RootState) -> None:
        """Folders that were not listed at all (deleted, renamed) lose their files, unless unreadable."""
        for relpath, row in st.folders.items():
            if (relpath in st.visited or any(_under(relpath, bad) for bad in st.unreadable)
                    or _below_any(relpath, st.left_alone)):
                continue
            self.conn.executemany(
                "INSERT OR IGNORE INTO temp.vanished (asset_id, relpath) VALUES (?, ?)",
                [(asset_id, join(relpath, name)) for asset_id, name in self.conn.execute(
                    "SELECT id, name FROM assets WHERE folder_id = ? AND status != 'missing'", (row.id,))])
            if not self.dry and row.present:
                self.conn.execute("UPDATE folders SET present = 0, signature = NULL WHERE id = ?", (row.id,))
                self._ops += 1

    def _settle_deferred(self, st: _RootState) -> None:
        for folder in st.deferred:
            folder.deferred = False
            self._maybe_settle(folder)

    def _maybe_settle(self, folder: _Folder) -> None:
        """Write the folder's signature once the catalog fully matches its listing."""
        if (self.dry or not folder.listed or folder.pending or folder.deferred or folder.lost or folder.kept
                or folder.folder_id is None):
            return
        rows.set_folder_state(self.conn, folder.folder_id, folder.signature, folder.file_count, folder.completeness)
        self._ops += 1

    # -- plumbing -----------------------------------------------------------------------------------------
    def _plan(self, action: str, path: str, asset_id: int | None = None, **kw: Any) -> None:
        if self.dry:
            self._plan_items.append(PlanItem(action, path, asset_id, **kw))

    def _check_cancel(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled("scan cancelled")

    def _begin(self) -> None:
        if not self._in_tx and not self.dry:
            self.conn.execute("BEGIN IMMEDIATE")
            self._in_tx = True
            self._last_commit = time.monotonic()

    def _maybe_commit(self) -> None:
        if self.dry:
            return
        if not self._in_tx:
            self._begin()
            return
        if self._ops >= self.COMMIT_OPS or time.monotonic() - self._last_commit >= self.COMMIT_SECONDS:
            self._commit()
            self._begin()

    def _commit(self) -> None:
        if self._in_tx:
            self.conn.execute("COMMIT")
            self._in_tx = False
            self._ops = 0

    def _shutdown(self, cancel: bool) -> None:
        if self._executor is not None:
            if cancel:
                for fut in self._inflight:
                    fut.cancel()
                self._inflight.clear()
            self._executor.shutdown(wait=True, cancel_futures=cancel)
            self._executor = None

    def _emit(self, event: ScanEvent) -> None:
        """Every folder listed and every file read is reported; displays throttle for themselves."""
        if self.progress is not None:
            self.progress(event)


def _under(path: bytes, folder: bytes) -> bool:
    return folder == b"" or path == folder or path.startswith(folder + b"/")


def _below_any(path: bytes, tops: set[bytes]) -> bool:
    """``path`` is one of ``tops`` or inside one (one set lookup per level, however many tops)."""
    while True:
        if path in tops:
            return True
        cut = path.rfind(b"/")
        if cut < 0:
            return False
        path = path[:cut]


def _summary_json(summary: ScanSummary) -> str:
    import json

    d = summary.to_dict()
    d.pop("plan", None)
    d["issues"] = d["issues"][:50]
    return json.dumps(d)


__all__ = ["ProgressFn", "ScanEvent", "ScanOptions", "Scanner"]
