"""Back up catalogued media to another disk or share, verified, never overwriting a different file.

Layout: ``<backup_root>/<root folder name>/<path inside the root>``, so a backup mirrors the library and a
restore is a plain copy back. Re-running copies only what is new or changed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

from ..catalog import Catalog
from ..catalog.search import SearchFilters, count, where_clause
from ..errors import MediaIdxError, UsageError
from ..models import PlanItem
from ..storage import Storage, StorageUnreachable, join, open_storage
from ..storage.credentials import parse_url, redact
from .fileops import (
    DISK_FULL,
    DestinationError,
    DestinationExists,
    check_folder_target,
    hash_file,
    hash_stream,
    verified_copy,
)


@dataclass
class BackupReport:
    dry_run: bool
    copied: int = 0
    skipped: int = 0
    conflicts: int = 0
    failed: int = 0
    not_attempted: int = 0  # files left when the backup disk filled up (or turned read-only) and the backup stopped
    bytes_copied: int = 0
    plan: list[PlanItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if k != "plan" else [p.to_dict() for p in v]) for k, v in self.__dict__.items()}


@dataclass(slots=True)
class _Item:
    asset_id: int
    url: str            # the root as the catalog stores it: a local folder, or a remote root's URL
    rel: bytes          # the path inside the root
    dest: Path
    size: int
    mtime_ns: int

    @property
    def remote(self) -> bool:
        return "://" in self.url

    @property
    def source(self) -> bytes:
        """The file's local path (local roots)."""
        return os.fsencode(self.url).rstrip(b"/") + b"/" + self.rel


def root_folder_names(conn: Any, backup_root: Path) -> dict[str, str]:
    """The folder of each root under ``backup_root``, computed once before anything is written (the dry run
    names the same folders as the real run).

    Evidence first: a recorded copy (``backups``) of one of a root's assets whose destination is exactly
    ``backup_root/<folder>/<the asset's path in this root today>`` is a vote for ``<folder>``; a file moved
    in from another root, or a copy made to a folder inside ``backup_root``, gives none. A root keeps the
    folder with most votes, so adding or removing a root never renames another root's folder (its next
    backup would copy all of it again). Two roots voting for one folder: more votes win, then the older root.
    Other roots get their last name, bare when no other root has that last name and no root kept it by its
    votes, else with a suffix from the URL that is the same in any catalog (``footage-1a2b3c``): two roots
    of one name never share a tree, and a catalog made anew finds the suffixed folders again."""
    roots = conn.execute("SELECT id, url FROM roots ORDER BY id").fetchall()
    names: dict[str, str] = {}
    claims = sorted(((-votes, rid, url, name) for rid, url, name, votes in _voted_folders(conn, backup_root)))
    for _, _, url, name in claims:  # most votes first, then the older root
        if name not in names.values():
            names[url] = name
    lasts = [_last_name(url) for _, url in roots]
    for _, url in roots:
        if url in names:
            continue
        base = _last_name(url)
        name, n = base, 6
        if lasts.count(base) > 1:
            name = f"{base}-{xxhash.xxh32_hexdigest(url.encode())[:n]}"
        while name in names.values():  # a name an evidenced root holds (or, by chance, another's suffix)
            name = f"{base}-{xxhash.xxh32_hexdigest(url.encode())[:n]}" if n <= 8 else f"{base}-{n - 7}"
            n += 1
        names[url] = name
    return names


def _candidates(url: str) -> list[str]:
    """The names this root's folder may have been given: its last name, and that name with its suffix."""
    suffix = xxhash.xxh32_hexdigest(url.encode())[:6]
    names = []
    # the last name, and for a remote root also its %-quoted form (what backups before 2026-11-29 used)
    for base in dict.fromkeys((_last_name(url), url.rstrip("/").rsplit("/", 1)[-1] or "root")):
        names += [f"{base}-{suffix}", base]
    return names


def _voted_folders(conn: Any, backup_root: Path) -> list[tuple[int, str, str, int]]:
    """(root id, root URL, folder, votes): each root's folder under ``backup_root`` by its recorded copies.
    A copy votes only when its destination is ``backup_root/<one name>/<the asset's current path in its
    root>``: an asset moved between roots keeps its id and records, and a backup made to a folder inside
    ``backup_root`` has more than one name before the path; neither says where this root's folder is.
    A copy votes only for one of the root's own names (its last name, bare or suffixed): a file moved from
    another root with the same path inside it keeps that root's copies. The most votes win (a tie: the
    latest copy)."""
    prefix = shown(backup_root).rstrip("/") + "/"
    tally: dict[tuple[int, str, str], list[int]] = {}  # (root, url, name) -> [votes, latest backup id]
    for rid, url, folder, aname, dest, bid in conn.execute(
            "SELECT r.id, r.url, f.relpath, a.name, b.dest, b.id FROM backups b JOIN assets a ON a.id = b.asset_id"
            " JOIN folders f ON f.id = a.folder_id JOIN roots r ON r.id = f.root_id"
            " WHERE substr(b.dest, 1, ?) = ?", (len(prefix), prefix)):
        tail = "/" + join(folder, aname).decode("utf-8", "backslashreplace")
        rest = dest[len(prefix):]
        if not rest.endswith(tail):
            continue
        name = rest[:-len(tail)]
        if name in ("", ".", "..") or "/" in name:
            continue
        t = tally.setdefault((rid, url, name), [0, 0])
        t[0] += 1
        t[1] = max(t[1], bid)
    best: dict[int, tuple[tuple[int, bool, int], str, str]] = {}
    for (rid, url, name), (votes, latest) in tally.items():
        # Only the root's own names count (dest is text, shown(): a name that is not UTF-8 is found again among
        # them): a file moved here from another root with the same path inside it brings that root's copies
        known = {shown(c): c for c in _candidates(url)}
        real = known.get(name)
        if real is None:
            continue
        key = (votes, latest)
        if rid not in best or key > best[rid][0]:
            best[rid] = (key, url, real)
    return [(rid, url, real, key[0]) for rid, (key, url, real) in best.items()]


def _last_name(url: str) -> str:
    """A local root's folder name. A remote root's last folder as the server names it (its URL %-quotes it:
    'My Footage', not 'My%20Footage'), or the bucket (s3) or server (sftp) when the root is all of it."""
    if "://" in url:
        with contextlib.suppress(MediaIdxError):
            u = parse_url(url)
            name = u.path.rsplit("/", 1)[-1] or u.host
            if name not in ("", ".", "..") and "\0" not in name and "/" not in name:
                return name
    return url.rstrip("/").rsplit("/", 1)[-1] or "root"


def _items(conn: Any, backup_root: Path, names: dict[str, str], query: str | None,
           flt: SearchFilters) -> Iterator[_Item]:
    source, where, params = where_clause(query, flt)
    last = 0
    while True:  # paged by id so a million assets never sit in memory at once
        rows = conn.execute(
            f"SELECT a.id, r.url, f.relpath, a.name, a.size, a.mtime_ns{source}{where} AND a.id > ?"
            " ORDER BY a.id LIMIT 500", [*params, last]).fetchall()
        if not rows:
            return
        for asset_id, url, folder, name, size, mtime_ns in rows:
            last = asset_id
            rel = join(folder, name)
            yield _Item(asset_id, url, rel, backup_root / names[url] / os.fsdecode(rel), size, mtime_ns)


def backup(db: Catalog, backup_root: str | os.PathLike[str], *, query: str | None = None,
           filters: SearchFilters | None = None, dry_run: bool = False, create_root: bool = False,
           progress: Callable[[int, int, str], None] | None = None) -> BackupReport:
    """Copy every matching present asset to ``backup_root``; the report lists each copy, skip and conflict.

    Assets on remote roots (S3, SMB, SFTP) are read through their storage, with the same guarantees as local
    files: a verified copy, never over a different file, and a server that is down or an object that is gone
    is a failure of those files only.

    ``backup_root`` must exist unless ``create_root``: a backup disk that is not mounted leaves its mount point
    (or nothing) where the folder should be, and creating the folder there would fill the system disk."""
    root = Path(backup_root).absolute()
    check_folder_target(root)
    if not create_root and not root.is_dir():
        raise UsageError(f"{backup_root}: no such folder; mount the backup disk or create the folder "
                         "(or set \"create_root\": true to have it made)")
    flt = filters or SearchFilters()
    conn = db.conn
    report = BackupReport(dry_run=dry_run)
    total = count(conn, query, flt)
    done = 0
    names = root_folder_names(conn, root)  # before anything is written: the dry run gets the same names
    trees = _backup_trees(root, names.values())
    remotes = _Remotes()
    for item in _items(conn, root, names, query, flt):
        done += 1
        try:
            if item.remote:
                # only the root can hold a user name; a file name may hold '@' and is shown as it is
                shown_src = redact(item.url.rstrip("/")) + "/" + item.rel.decode("utf-8", "backslashreplace")
                if progress:
                    progress(done, total, shown_src)
                digest, size = _backup_remote(conn, item, shown_src, remotes, report, dry_run)
            else:
                shown_src = item.source.decode("utf-8", "backslashreplace")
                if progress:
                    progress(done, total, os.fsdecode(item.source))
                digest, size = _backup_local(conn, item, shown_src, trees, report, dry_run)
        except _DiskFull as exc:  # every further file would fail the same way: stop here
            report.not_attempted = max(total - done, 0)
            report.plan.append(PlanItem("fail", shown(root), reason=(
                f"backup stopped: {exc} ({report.not_attempted} file(s) not attempted); make room and run it "
                "again (what was copied stays)")))
            break
        if dry_run or digest is None:
            continue
        report.copied += 1
        report.bytes_copied += size
        with db.transaction():
            conn.execute(
                "INSERT INTO backups (asset_id, source, dest, size, hash, copied_at) VALUES (?, ?, ?, ?, ?, ?)",
                (item.asset_id, shown_src, shown(item.dest), size, digest, time.time()))
    return report


def _backup_local(conn: Any, item: _Item, shown_src: str, trees: list[bytes], report: BackupReport,
                  dry_run: bool) -> tuple[str | None, int]:
    """One local file: (the verified copy's hash, its size); no hash when nothing was copied (the report
    says why, or, in a dry run, plans the copy)."""
    shown_dest = shown(item.dest)
    try:
        st = os.stat(item.source)
    except OSError as exc:
        return _fail(report, item, shown_src, f"cannot read: {exc.strerror}")
    if _same_file(item.dest, st):
        report.failed += 1
        report.plan.append(PlanItem("fail", shown_dest, item.asset_id, source=shown_src,
                                    reason="the backup destination is the source file itself "
                                           "(backup_root holds the library root); nothing copied"))
        return None, 0
    if _inside(item.source, trees):
        report.skipped += 1
        report.plan.append(PlanItem("skip", shown_src, item.asset_id, source=shown_src,
                                    reason="inside backup_root: a backup copy is not backed up again"))
        return None, 0
    if os.path.lexists(item.dest):
        _existing(report, item, shown_src, _recorded(conn, item, st.st_size, st.st_mtime_ns, st.st_mtime)
                  or _same(item.source, item.dest, st.st_size))
        return None, 0
    if _plan_copy(report, item, shown_src, st.st_size, dry_run):
        return None, 0
    try:
        digest = verified_copy(item.source, item.dest)
    except DestinationExists as exc:
        return _conflict(report, item, shown_src, exc)
    except DestinationError as exc:
        return _write_failed(report, item, shown_src, exc)
    except (OSError, Exception) as exc:  # one bad file must not stop a backup of thousands
        reason = f"cannot read: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
        report.plan[-1] = PlanItem("fail", shown_dest, item.asset_id, source=shown_src, reason=shown(reason))
        report.failed += 1
        return None, 0
    return digest, st.st_size


def _backup_remote(conn: Any, item: _Item, shown_src: str, remotes: _Remotes, report: BackupReport,
                   dry_run: bool) -> tuple[str | None, int]:
    """One file on a remote root, through its Storage, as ``_backup_local``. It is stat'ed (a dry run reads
    no more than that, unless a same-size file of another backup sits at the destination), read once while
    copying (S3 reads keep to the version first read: an object replaced mid-read fails), and stat'ed
    again before its copy is placed: a file changed while it was read is not placed."""
    if any(c in (b"", b".", b"..") for c in item.rel.split(b"/")):
        return _fail(report, item, shown_src, "a path with an empty, '.' or '..' component; not copied")
    try:
        storage = remotes.storage(item.url)
    except _RootDown as exc:
        return _fail(report, item, shown_src, str(exc))
    errors = _io_errors(storage)
    try:
        st = storage.stat(item.rel)
    except errors as exc:
        return _fail(report, item, shown_src, remotes.reason(item.url, storage, exc))
    if os.path.lexists(item.dest):
        # A remote mtime in whole seconds (S3's LastModified) may be up to a second older than the change.
        mtime = st.mtime_ns / 1e9 + (1 if st.mtime_ns % 1_000_000_000 == 0 else 0)
        try:
            same = (_recorded(conn, item, st.size, st.mtime_ns, mtime)
                    or _same_remote(storage, item.rel, st.size, item.dest))
        except errors as exc:
            return _fail(report, item, shown_src, remotes.reason(item.url, storage, exc))
        _existing(report, item, shown_src, same)
        return None, 0
    if _plan_copy(report, item, shown_src, st.size, dry_run):
        return None, 0

    def unchanged() -> None:
        now = storage.stat(item.rel)
        if (now.size, now.mtime_ns, now.etag) != (st.size, st.mtime_ns, st.etag):
            raise MediaIdxError("the source changed while it was read; nothing placed (the next backup copies it)")

    try:
        digest = verified_copy(lambda: storage.open(item.rel, st.size), item.dest, size=st.size,  # type: ignore[call-arg]
                               mtime_ns=st.mtime_ns, unchanged=unchanged)
    except DestinationExists as exc:
        return _conflict(report, item, shown_src, exc)
    except DestinationError as exc:  # our disk's failure (fileops tells it from the server's)
        return _write_failed(report, item, shown_src, exc)
    except errors as exc:  # the server's failure for this file; a bug in our code is raised
        reason = remotes.reason(item.url, storage, exc)
        report.plan[-1] = PlanItem("fail", shown(item.dest), item.asset_id, source=shown_src, reason=shown(reason))
        report.failed += 1
        return None, 0
    return digest, st.size


class _DiskFull(Exception):
    """The backup disk is full, over quota or read-only (the message says which): the backup stops."""


def _write_failed(report: BackupReport, item: _Item, shown_src: str, exc: DestinationError) -> tuple[None, int]:
    """Writing the copy failed: this file fails, naming its destination; a full disk stops the backup."""
    report.plan[-1] = PlanItem("fail", shown(item.dest), item.asset_id, source=shown_src,
                               reason=f"cannot write {shown(exc.filename)}: {exc.strerror or exc}")
    report.failed += 1
    if exc.errno in DISK_FULL:
        raise _DiskFull(f"{DISK_FULL[exc.errno]} ({shown(item.dest.parent)})")
    return None, 0


class _RootDown(Exception):
    """A remote root this backup cannot use (the reason is the message)."""


class _Remotes:
    """The remote roots one backup reads, each opened once as the scan opens them (credentials from the
    environment, storage.toml or the keyring), and those found unreachable: their other files fail at once,
    with the same reason, instead of each waiting out the retries again."""

    def __init__(self) -> None:
        self.storages: dict[str, Storage] = {}
        self.down: dict[str, str] = {}

    def storage(self, url: str) -> Storage:
        if url in self.down:
            raise _RootDown(self.down[url])
        st = self.storages.get(url)
        if st is None:
            try:
                st = self.storages[url] = open_storage(url)
            except MediaIdxError as exc:  # a URL or a credentials setup it cannot use: says why, no secret
                self.down[url] = f"cannot use {redact(url)}: {redact(str(exc))}"
                raise _RootDown(self.down[url]) from None
        return st

    def reason(self, url: str, storage: Storage, exc: BaseException) -> str:
        """One line for ``exc``, never with a secret; an unreachable storage is remembered as down."""
        if isinstance(exc, StorageUnreachable):
            self.down[url] = f"cannot connect to {redact(url)} ({exc.strerror})"
            return self.down[url]
        if isinstance(exc, FileNotFoundError):
            return "cannot read: no such file (gone since the scan)"
        if isinstance(exc, PermissionError):
            return "cannot read: permission denied"
        if isinstance(exc, MediaIdxError):
            return str(exc)
        say = getattr(storage, "_say", None)  # RemoteStorage: the error's first line, credentials scrubbed
        text = say(exc) if say is not None else (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
        return f"cannot read: {redact(str(text))}"


def _io_errors(storage: Storage) -> tuple[type[BaseException], ...]:
    """What a storage raises when its server fails or refuses, and a failed verification: that file fails
    and the backup goes on. A bug in this code is none of them: it stops the backup loudly."""
    errors = getattr(storage, "io_errors", None)
    return (*(errors() if errors is not None else (OSError, EOFError)), MediaIdxError)


def _fail(report: BackupReport, item: _Item, shown_src: str, reason: str) -> tuple[None, int]:
    report.failed += 1
    report.plan.append(PlanItem("fail", shown_src, item.asset_id, reason=reason))
    return None, 0


def _conflict(report: BackupReport, item: _Item, shown_src: str, exc: Exception) -> tuple[None, int]:
    report.plan[-1] = PlanItem("conflict", shown(item.dest), item.asset_id, source=shown_src, reason=shown(str(exc)))
    report.conflicts += 1
    return None, 0


def _existing(report: BackupReport, item: _Item, shown_src: str, same: bool) -> None:
    """The destination exists: our copy of this very file, or a different file that is left untouched."""
    if same:
        report.skipped += 1
        report.plan.append(PlanItem("skip", shown(item.dest), item.asset_id, source=shown_src,
                                    reason="already backed up"))
    else:
        report.conflicts += 1
        report.plan.append(PlanItem("conflict", shown(item.dest), item.asset_id, source=shown_src,
                                    reason="a different file has this name; left untouched"))


def _plan_copy(report: BackupReport, item: _Item, shown_src: str, size: int, dry_run: bool) -> bool:
    """Plan the copy; True in a dry run (counted as copied, nothing read or written)."""
    report.plan.append(PlanItem("copy", shown(item.dest), item.asset_id, source=shown_src))
    if dry_run:
        report.copied += 1
        report.bytes_copied += size
    return dry_run


def _recorded(conn: Any, item: _Item, size: int, mtime_ns: int, mtime: float) -> bool:
    """A verified copy we made ourselves, with source and destination untouched since: no need to rehash.
    ``mtime`` is the source's modification time in seconds, rounded up where the storage rounds it down."""
    row = conn.execute("SELECT size, copied_at FROM backups WHERE asset_id = ? AND dest = ? ORDER BY id DESC"
                       " LIMIT 1", (item.asset_id, shown(item.dest))).fetchone()
    if row is None:
        return False
    try:
        dst = os.stat(item.dest)
    except OSError:
        return False
    return row[0] == size == dst.st_size and mtime_ns == dst.st_mtime_ns and mtime <= row[1]


def _same_remote(storage: Storage, rel: bytes, size: int, dest: Path) -> bool:
    """The file at ``dest`` holds the remote file's bytes (read only when the sizes match)."""
    try:
        if os.path.getsize(dest) != size:
            return False
        mine = hash_file(dest)
    except OSError:
        return False
    with storage.open(rel, size) as fh:  # type: ignore[call-arg]
        return hash_stream(fh) == mine


def shown(path: str | os.PathLike[str]) -> str:
    """A path as text SQLite and JSON accept: bytes that are not UTF-8 (surrogates) as backslash escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _same_file(dest: Path, st: os.stat_result) -> bool:
    """``dest`` is the source itself (or a hard link to it): no backup at all, whatever its content says."""
    try:
        d = os.stat(dest)
    except OSError:
        return False
    return (d.st_dev, d.st_ino) == (st.st_dev, st.st_ino)


def _backup_trees(root: Path, names: Iterable[str]) -> list[bytes]:
    """The folders this backup writes into (``backup_root/<root name>/``), as they are and resolved."""
    out = set()
    for base in (os.fsencode(root), os.fsencode(os.path.realpath(root))):
        out.update(base.rstrip(b"/") + b"/" + os.fsencode(n) + b"/" for n in names)
    return sorted(out)


def _inside(source: bytes, trees: list[bytes]) -> bool:
    """A catalogued file that lies in the backup's own tree (backup_root inside a scanned root)."""
    return any(source.startswith(t) for t in trees)


def _same(src: bytes, dest: Path, size: int) -> bool:
    try:
        if os.path.getsize(dest) != size:
            return False
        return hash_file(src) == hash_file(dest)
    except OSError:
        return False
