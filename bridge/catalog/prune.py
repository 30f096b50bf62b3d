"""Deleting what scans only mark: missing assets and thumbnails nothing refers to any more."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..models import PlanItem
from ..storage import join

USER_DATA = "loses user data: "  # the reason on a delete item that drops ratings, tags or notes


def plan_prune(conn: sqlite3.Connection, thumbs_dir: Path, older_than_days: float | None = None
               ) -> list[PlanItem]:
    """Everything ``prune`` would delete, in order: missing assets, then orphaned thumbnails."""
    where, params = "a.status = 'missing'", []
    if older_than_days is not None:
        where += " AND a.missing_since <= ?"
        params.append(time.time() - older_than_days * 86400)
    plan = plan_asset_deletions(conn, where, params)
    doomed = {p.id for p in plan}
    keep = {rel for asset_id, rel in thumb_refs(conn) if asset_id not in doomed}
    if thumbs_dir.is_dir():
        for dirpath, _dirs, files in os.walk(thumbs_dir):
            for fn in sorted(files):
                full = Path(dirpath) / fn
                rel = full.relative_to(thumbs_dir).as_posix()
                if rel not in keep:
                    plan.append(PlanItem("remove", str(full), reason="thumbnail no asset uses"))
    return plan


def plan_asset_deletions(conn: sqlite3.Connection, where: str, params: list[Any]) -> list[PlanItem]:
    """A "delete" item per asset matching ``where`` (over ``assets a``, ``folders f``), in id order, saying
    which ratings, tags or notes it would lose (shared by prune and roots forget)."""
    plan = []
    for asset_id, url, folder, name, rating, note, ntags in conn.execute(
            "SELECT a.id, r.url, f.relpath, a.name, a.rating, a.note,"
            " (SELECT count(*) FROM asset_tags x WHERE x.asset_id = a.id)"
            " FROM assets a JOIN folders f ON f.id = a.folder_id JOIN roots r ON r.id = f.root_id"
            f" WHERE {where} ORDER BY a.id", params):
        user = [w for w, v in (("rating", rating is not None), ("note", bool(note)), (f"{ntags} tags", ntags)) if v]
        path = f"{url.rstrip('/')}/{join(folder, name).decode('utf-8', 'backslashreplace')}"
        plan.append(PlanItem("delete", path, asset_id, reason=(USER_DATA + ", ".join(user)) if user else None))
    return plan


def thumb_refs(conn: sqlite3.Connection) -> Iterator[tuple[int, str]]:
    """(asset id, path inside the thumbnail cache) of every thumbnail and hero image (bridge/analysis) in use."""
    yield from conn.execute("SELECT id, thumb FROM assets WHERE thumb IS NOT NULL AND thumb != ''"
                            " UNION ALL SELECT asset_id, hero FROM analyses WHERE hero IS NOT NULL AND hero != ''")


def delete_asset_rows(conn: sqlite3.Connection, ids: list[tuple[int]]) -> None:
    """Asset rows with their search rows (analyses, shots, tags go by cascade), then tags nobody uses; inside
    the caller's transaction."""
    conn.executemany("DELETE FROM asset_fts WHERE rowid = ?", ids)
    conn.executemany("DELETE FROM assets WHERE id = ?", ids)
    conn.execute("DELETE FROM tags WHERE id NOT IN (SELECT tag_id FROM asset_tags)")


def remove_files(plan: list[PlanItem]) -> None:
    """The plan's "remove" items (thumbnails), after its rows were committed."""
    for p in plan:
        if p.action == "remove":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p.path)


def apply_prune(conn: sqlite3.Connection, plan: list[PlanItem]) -> None:
    """Carry out a plan from ``plan_prune`` (in one transaction for the rows)."""
    ids = [(p.id,) for p in plan if p.action == "delete"]
    conn.execute("BEGIN IMMEDIATE")
    try:
        delete_asset_rows(conn, ids)
        conn.execute("DELETE FROM folders WHERE present = 0 AND id NOT IN (SELECT folder_id FROM assets)")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    remove_files(plan)
