"""Deleting what scans only mark: missing assets and thumbnails nothing refers to any more."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from ..models import PlanItem
from ..storage import join


def plan_prune(conn: sqlite3.Connection, thumbs_dir: Path, older_than_days: float | None = None
               ) -> list[PlanItem]:
    """Everything ``prune`` would delete, in order: missing assets, then orphaned thumbnails."""
    cutoff = time.time() - older_than_days * 86400 if older_than_days is not None else None
    plan: list[PlanItem] = []
    sql = ("SELECT a.id, r.url, f.relpath, a.name, a.rating, a.note,"
           " (SELECT count(*) FROM asset_tags x WHERE x.asset_id = a.id)"
           " FROM assets a JOIN folders f ON f.id = a.folder_id JOIN roots r ON r.id = f.root_id"
           " WHERE a.status = 'missing'")
    params: list[float] = []
    if cutoff is not None:
        sql += " AND a.missing_since <= ?"
        params.append(cutoff)
    doomed: set[int] = set()
    for asset_id, url, folder, name, rating, note, ntags in conn.execute(sql + " ORDER BY a.id", params):
        user = [w for w, v in (("rating", rating is not None), ("note", bool(note)), (f"{ntags} tags", ntags)) if v]
        path = f"{url.rstrip('/')}/{join(folder, name).decode('utf-8', 'backslashreplace')}"
        plan.append(PlanItem("delete", path, asset_id,
                             reason=("loses user data: " + ", ".join(user)) if user else None))
        doomed.add(asset_id)
    keep = {t for (i, t) in conn.execute("SELECT id, thumb FROM assets WHERE thumb IS NOT NULL AND thumb != ''")
            if i not in doomed}
    keep |= {h for (i, h) in conn.execute("SELECT asset_id, hero FROM analyses WHERE hero IS NOT NULL AND hero != ''")
             if i not in doomed}  # hero images (bridge/analysis) live beside the thumbnails
    if thumbs_dir.is_dir():
        for dirpath, _dirs, files in os.walk(thumbs_dir):
            for fn in sorted(files):
                full = Path(dirpath) / fn
                rel = full.relative_to(thumbs_dir).as_posix()
                if rel not in keep:
                    plan.append(PlanItem("remove", str(full), reason="thumbnail no asset uses"))
    return plan


def apply_prune(conn: sqlite3.Connection, plan: list[PlanItem]) -> None:
    """Carry out a plan from ``plan_prune`` (in one transaction for the rows)."""
    ids = [(p.id,) for p in plan if p.action == "delete"]
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("DELETE FROM asset_fts WHERE rowid = ?", ids)
        conn.executemany("DELETE FROM assets WHERE id = ?", ids)
        conn.execute("DELETE FROM tags WHERE id NOT IN (SELECT tag_id FROM asset_tags)")
        conn.execute("DELETE FROM folders WHERE present = 0 AND id NOT IN (SELECT folder_id FROM assets)")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    for p in plan:
        if p.action == "remove":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p.path)
