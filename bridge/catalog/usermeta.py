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
    """(id, spelling) of the tag that is ``tag`` up to case, in any script; the exact spelling first."""
    row = conn.execute("SELECT id, name FROM tags WHERE name = ? OR casefold(name) = ? ORDER BY name != ? LIMIT 1",
                       (tag, tag.casefold(), tag)).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def add_tags(conn: sqlite3.Connection, asset_id: int, tags: list[str]) -> list[str]:
    """Add tags (case-insensitive in any script, existing spelling wins); returns those actually added."""
    have = {t.casefold() for t in current_tags(conn, asset_id)}
    added = []
    for tag in tags:
        if tag.casefold() in have:
            continue
        found = find_tag(conn, tag)
        if found is None:
            tag_id = conn.execute("INSERT INTO tags (name) VALUES (?)", (tag,)).lastrowid
        else:
            tag_id, tag = found
        conn.execute("INSERT OR IGNORE INTO asset_tags (asset_id, tag_id) VALUES (?, ?)", (asset_id, tag_id))
        have.add(tag.casefold())
        added.append(tag)
    if added:
        _touch(conn, asset_id)
    return added


def remove_tags(conn: sqlite3.Connection, asset_id: int, tags: list[str]) -> list[str]:
    removed = []
    for tag in tags:
        row = find_tag(conn, tag)
        if row and conn.execute("DELETE FROM asset_tags WHERE asset_id = ? AND tag_id = ?",
                                (asset_id, row[0])).rowcount:
            removed.append(row[1])
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
