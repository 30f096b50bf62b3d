"""Back up catalogued media to another disk or share, verified, never overwriting a different file.

Layout: ``<backup_root>/<root folder name>/<path inside the root>``, so a backup mirrors the library and a
restore is a plain copy back. Re-running copies only what is new or changed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

from ..catalog import Catalog
from ..catalog.search import SearchFilters, count, where_clause
from ..errors import UsageError
from ..models import PlanItem
from ..storage import join
from .fileops import DestinationExists, check_folder_target, hash_file, verified_copy


@dataclass
class BackupReport:
    dry_run: bool
    copied: int = 0
    skipped: int = 0
    conflicts: int = 0
    failed: int = 0
    bytes_copied: int = 0
    plan: list[PlanItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if k != "plan" else [p.to_dict() for p in v]) for k, v in self.__dict__.items()}


@dataclass(slots=True)
class _Item:
    asset_id: int
    source: bytes
    dest: Path
    size: int
    mtime_ns: int


def root_folder_names(conn: Any) -> dict[str, str]:
    """A folder name per root for the backup layout; roots that share a last name get a short suffix."""
    urls = [u for (u,) in conn.execute("SELECT url FROM roots ORDER BY id")]
    base = {u: (u.rstrip("/").rsplit("/", 1)[-1] or "root") for u in urls}
    counts: dict[str, int] = {}
    for b in base.values():
        counts[b] = counts.get(b, 0) + 1
    return {u: b if counts[b] == 1 else f"{b}-{xxhash.xxh32_hexdigest(u.encode())[:6]}" for u, b in base.items()}


def _items(conn: Any, backup_root: Path, query: str | None, flt: SearchFilters) -> Iterator[_Item]:
    names = root_folder_names(conn)
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
            if "://" in url:
                continue  # remote roots are backed up through their storage backend (not yet)
            rel = join(folder, name)
            src = os.fsencode(url).rstrip(b"/") + b"/" + rel
            dest = backup_root / names[url] / os.fsdecode(rel)
            yield _Item(asset_id, src, dest, size, mtime_ns)


def backup(db: Catalog, backup_root: str | os.PathLike[str], *, query: str | None = None,
           filters: SearchFilters | None = None, dry_run: bool = False, create_root: bool = False,
           progress: Callable[[int, int, str], None] | None = None) -> BackupReport:
    """Copy every matching present asset to ``backup_root``; the report lists each copy, skip and conflict.

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
    trees = _backup_trees(root, root_folder_names(conn).values())
    for item in _items(conn, root, query, flt):
        done += 1
        if progress:
            progress(done, total, os.fsdecode(item.source))
        shown_src = item.source.decode("utf-8", "backslashreplace")
        shown_dest = shown(item.dest)
        try:
            st = os.stat(item.source)
        except OSError as exc:
            report.failed += 1
            report.plan.append(PlanItem("fail", shown_src, item.asset_id, reason=f"cannot read: {exc.strerror}"))
            continue
        if _same_file(item.dest, st):
            report.failed += 1
            report.plan.append(PlanItem("fail", shown_dest, item.asset_id, source=shown_src,
                                        reason="the backup destination is the source file itself "
                                               "(backup_root holds the library root); nothing copied"))
            continue
        if _inside(item.source, trees):
            report.skipped += 1
            report.plan.append(PlanItem("skip", shown_src, item.asset_id, source=shown_src,
                                        reason="inside backup_root: a backup copy is not backed up again"))
            continue
        if os.path.lexists(item.dest):
            if _recorded(conn, item, st) or _same(item.source, item.dest, st.st_size):
                report.skipped += 1
                report.plan.append(PlanItem("skip", shown_dest, item.asset_id, source=shown_src,
                                            reason="already backed up"))
            else:
                report.conflicts += 1
                report.plan.append(PlanItem("conflict", shown_dest, item.asset_id, source=shown_src,
                                            reason="a different file has this name; left untouched"))
            continue
        report.plan.append(PlanItem("copy", shown_dest, item.asset_id, source=shown_src))
        if dry_run:
            report.copied += 1
            report.bytes_copied += st.st_size
            continue
        try:
            digest = verified_copy(item.source, item.dest)
        except DestinationExists as exc:
            report.plan[-1] = PlanItem("conflict", shown_dest, item.asset_id, source=shown_src,
                                       reason=shown(str(exc)))
            report.conflicts += 1
            continue
        except (OSError, Exception) as exc:  # one bad file must not stop a backup of thousands
            report.plan[-1] = PlanItem("fail", shown_dest, item.asset_id, source=shown_src,
                                       reason=shown(getattr(exc, "strerror", None) or str(exc)))
            report.failed += 1
            continue
        report.copied += 1
        report.bytes_copied += st.st_size
        with db.transaction():
            conn.execute(
                "INSERT INTO backups (asset_id, source, dest, size, hash, copied_at) VALUES (?, ?, ?, ?, ?, ?)",
                (item.asset_id, shown_src, shown_dest, st.st_size, digest, time.time()))
    return report


def _recorded(conn: Any, item: _Item, st: os.stat_result) -> bool:
    """A verified copy we made ourselves, with source and destination untouched since: no need to rehash."""
    row = conn.execute("SELECT size, copied_at FROM backups WHERE asset_id = ? AND dest = ? ORDER BY id DESC"
                       " LIMIT 1", (item.asset_id, shown(item.dest))).fetchone()
    if row is None:
        return False
    try:
        dst = os.stat(item.dest)
    except OSError:
        return False
    return (row[0] == st.st_size == dst.st_size and st.st_mtime_ns == dst.st_mtime_ns
            and st.st_mtime <= row[1])


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
