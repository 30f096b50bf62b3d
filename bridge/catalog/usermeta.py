"""Ratings, tags and notes: the user's own data, kept on the asset row so moves and renames keep it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from ..errors import UsageError
from .assets import refresh_user_text


def check_text(text: str, what: str) -> str:
    """User text must be storable as UTF-8: bytes that are not (a shell argument such as $'\\xff' arrives as
    a lone surrogate) are refused with one line instead of failing inside SQLite."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:  # bytes from a shell argument shown as \xNN; a lone surrogate from JSON as \udNNN
            shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
        raise UsageError(f"{what} '{shown}' is not valid UTF-8 text") from None
    return text


def clean_tags(tags: Iterable[str]) -> list[str]:
    out: list[str] = []
    for t in tags:
        t = " ".join(check_text(t, "tag").split())
        if not t:
            continue
        if len(t) > 100:
            raise UsageError(f"tag too long ({len(t)} characters, at most 100)")
        if t.casefold() not in (o.casefold() for o in out):
            out.append(t)
    if not out:
        raise UsageError("no tag given")
    return out


def current_tags(conn: sqlite3.Connection, asset_id: int) -> list[str]:
    return sorted((r[0] for r in conn.execute(
        "SELECT t.name FROM asset_tags x JOIN tags t ON t.id = x.tag_id WHERE x.asset_id = ?", (asset_id,))),
        key=str.casefold)


def find_tag(conn: sqlite3.Connection, tag: str) -> tuple[int, str] | None:
    """(id, spelling) of the tag that is ``tag`` up to case, in any script: the exact spelling first, else the
    one stored first (by id, so a dry run and the real run pick the same one)."""
    row = conn.execute("SELECT id, name FROM tags WHERE name = ? OR casefold(name) = ? ORDER BY name != ?, id "
                       "LIMIT 1", (tag, tag.casefold(), tag)).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def plan_add_tags(conn: sqlite3.Connection, asset_id: int, tags: list[str]) -> list[tuple[str, int | None]]:
    """What adding ``tags`` would do, without writing: (spelling stored, existing tag id or None for a new tag)
    for each tag the asset does not have yet in any case. The spelling is the catalog's when the tag exists on
    another asset (the first spelling stored wins), so a dry run names exactly what the real run stores."""
    have = {t.casefold() for t in current_tags(conn, asset_id)}
    out: list[tuple[str, int | None]] = []
    for tag in tags:
        if tag.casefold() in have:
            continue
        found = find_tag(conn, tag)
        out.append((tag, None) if found is None else (found[1], found[0]))
        have.add(tag.casefold())
    return out


def plan_remove_tags(conn: sqlite3.Connection, asset_id: int, tags: list[str]) -> list[tuple[str, int]]:
    """What removing ``tags`` would do: (the asset's own spelling, tag id) of each one it has in any case (all of
    them, should an older catalog hold two spellings of one tag)."""
    have: dict[str, list[tuple[str, int]]] = {}
    for tag_id, name in conn.execute("SELECT t.id, t.name FROM asset_tags x JOIN tags t ON t.id = x.tag_id "
                                     "WHERE x.asset_id = ? ORDER BY t.id", (asset_id,)):
        have.setdefault(str(name).casefold(), []).append((str(name), int(tag_id)))
    out: list[tuple[str, int]] = []
    for tag in tags:
        out += have.pop(tag.casefold(), [])
    return out


def add_tags(conn: sqlite3.Connection, asset_id: int, tags: list[str]) -> list[str]:
    """Add tags (case-insensitive in any script, existing spelling wins); returns the spellings actually added,
    the same list `plan_add_tags` gives before the write."""
    added = []
    for tag, tag_id in plan_add_tags(conn, asset_id, tags):
        if tag_id is None:
            tag_id = conn.execute("INSERT INTO tags (name) VALUES (?)", (tag,)).lastrowid
        conn.execute("INSERT OR IGNORE INTO asset_tags (asset_id, tag_id) VALUES (?, ?)", (asset_id, tag_id))
        added.append(tag)
    if added:
        _touch(conn, asset_id)
    return added


def remove_tags(conn: sqlite3.Connection, asset_id: int, tags: list[str]) -> list[str]:
    """Remove tags (any case); returns the asset's spellings of those removed, as `plan_remove_tags` names them."""
    removed = []
    for tag, tag_id in plan_remove_tags(conn, asset_id, tags):
        conn.execute("DELETE FROM asset_tags WHERE asset_id = ? AND tag_id = ?", (asset_id, tag_id))
        removed.append(tag)
    if removed:
        conn.execute("DELETE FROM tags WHERE id NOT IN (SELECT tag_id FROM asset_tags)")
        _touch(conn, asset_id)
    return removed


def set_rating(conn: sqlite3.Connection, asset_id: int, rating: int | None) -> None:
    if rating is not None and not 0 <= rating <= 5:
        raise UsageError(f"rating must be 0 to 5, not {rating}")
    conn.execute("UPDATE assets SET rating = ? WHERE id = ?", (rating, asset_id))
    _touch(conn, asset_id)


def set_note(conn: sqlite3.Connection, asset_id: int, note: str | None) -> None:
    """The note as given: MediaIndexer.note checked it (check_text) before the dry run or the transaction."""
    conn.execute("UPDATE assets SET note = ? WHERE id = ?", (note or None, asset_id))
    _touch(conn, asset_id)


def _touch(conn: sqlite3.Connection, asset_id: int) -> None:
    conn.execute("UPDATE assets SET updated_at = ? WHERE id = ?", (time.time(), asset_id))
    refresh_user_text(conn, asset_id)
