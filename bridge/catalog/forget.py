"""Forgetting a root: its folders, assets, their analyses and thumbnails leave the catalog; the files stay.

Why a command: a share is retired, or a folder was registered by mistake (and a registered root is what the
services trust, bridge/service/rootpolicy.py). User data goes with the assets, so assets that carry ratings,
tags or notes are refused unless the caller says to drop them: a library that moved to another root keeps
its user data by scanning the old and the new root (moves are recognised across roots), after which the old
root holds nothing worth keeping.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from ..errors import NotFoundError, UsageError
from ..models import PlanItem
from ..storage.credentials import is_remote, parse_url, redact
from .prune import delete_asset_rows, plan_asset_deletions, remove_files, thumb_refs


def resolve_root(conn: sqlite3.Connection, given: str | os.PathLike[str]) -> tuple[int, str]:
    """(id, url) of the catalog root ``given`` names: as stored, as an absolute local path, or as a remote URL
    in the catalog's canonical form. NotFoundError otherwise (naming the roots there are)."""
    text = os.fspath(given)
    candidates = [text]
    if is_remote(text):
        with contextlib.suppress(UsageError):
            candidates.append(parse_url(text).url)
    elif "://" not in text or text.startswith("file://"):
        local = text[len("file://"):] if text.startswith("file://") else text
        candidates.append(os.fsdecode(os.path.abspath(os.fsencode(os.path.expanduser(local))).rstrip(b"/") or b"/"))
    for c in candidates:
        try:
            c.encode("utf-8")
        except UnicodeEncodeError:
            continue  # not valid UTF-8 ($'\xff' on a shell): no root's URL is spelt so
        row = conn.execute("SELECT id, url FROM roots WHERE url = ?", (c,)).fetchone()
        if row:
            return int(row[0]), str(row[1])
    known = [u for (u,) in conn.execute("SELECT url FROM roots ORDER BY url")]
    raise NotFoundError(f"{redact(text)}: not a root of this catalog (roots: {', '.join(known) or 'none'})")


def plan_forget(conn: sqlite3.Connection, thumbs_dir: Path, root: str | os.PathLike[str],
                drop_user_data: bool = False) -> list[PlanItem]:
    """Everything forgetting ``root`` would do: the root, each asset, then the thumbnails and hero images only
    those assets used. UsageError when assets carry user data and ``drop_user_data`` is False."""
    root_id, url = resolve_root(conn, root)
    assets = plan_asset_deletions(conn, "f.root_id = ?", [root_id])
    with_user_data = sum(1 for p in assets if p.reason)
    if with_user_data and not drop_user_data:
        raise UsageError(
            f"{with_user_data} asset(s) under {url} carry ratings, tags or notes: forgetting the root would lose "
            f"them. If the footage moved, scan the old and the new location first (mediaidx scan {url} NEW: "
            "moves keep user data); otherwise use --drop-user-data (--dry-run lists them)")
    plan = [PlanItem("forget-root", url, reason="the root, its folders and scan history; files are not touched"),
            *assets]
    doomed = {p.id for p in assets}
    used_elsewhere: set[str] = set()
    doomed_files: set[str] = set()
    for asset_id, rel in thumb_refs(conn):
        (doomed_files if asset_id in doomed else used_elsewhere).add(rel)
    for rel in sorted(doomed_files - used_elsewhere):  # thumbnails are keyed by content: another copy may share one
        full = thumbs_dir / rel
        if full.is_file():
            plan.append(PlanItem("remove", str(full), reason="thumbnail only this root's assets used"))
    return plan


def apply_forget(conn: sqlite3.Connection, plan: list[PlanItem]) -> None:
    """Carry out a plan from ``plan_forget``: the rows in one transaction, then the thumbnail files."""
    url = next(p.path for p in plan if p.action == "forget-root")
    ids = [(p.id,) for p in plan if p.action == "delete"]
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT id FROM roots WHERE url = ?", (url,)).fetchone()
        if row is None:
            raise NotFoundError(f"{redact(url)}: not a root of this catalog any more")
        left = conn.execute("SELECT count(*) FROM assets a JOIN folders f ON f.id = a.folder_id WHERE f.root_id = ?",
                            (row[0],)).fetchone()[0]
        if left != len(ids):  # a scan changed the root since the plan was made (callers hold the scan lock)
            raise UsageError(f"{redact(url)} changed while its removal was planned; run it again")
        delete_asset_rows(conn, ids)
        conn.execute("DELETE FROM folders WHERE root_id = ?", (row[0],))
        conn.execute("DELETE FROM roots WHERE id = ?", (row[0],))  # its scans go with it
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    remove_files(plan)
