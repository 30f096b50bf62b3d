"""Asset, folder and root rows: the only code that writes them, so the search index never drifts."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..mediatypes import kind_of_ext, split_ext
from ..storage import FileStat, join

# Columns copied from bridge.probe.summarize() into the asset row.
SUMMARY_COLUMNS = (
    "container", "video_codec", "audio_codec", "width", "height", "duration", "fps_num", "fps_den",
    "has_audio", "audio_silent", "captured_at", "captured_utc", "camera_make", "camera_model",
)


@dataclass(slots=True)
class FolderRow:
    id: int
    relpath: bytes
    signature: bytes | None
    file_count: int
    probed: bool
    thumbed: bool
    present: bool


@dataclass(slots=True)
class AssetRow:
    """The columns a scan compares; user data is never loaded here, so it can never be overwritten."""

    id: int
    name: bytes
    kind: str
    size: int
    mtime_ns: int
    inode: int | None
    device: int | None
    status: str
    fingerprint: bytes | None
    thumb: str | None
    probed: bool


# -- roots and folders ---------------------------------------------------------------------------------

def find_root(conn: sqlite3.Connection, url: str) -> int | None:
    row = conn.execute("SELECT id FROM roots WHERE url = ?", (url,)).fetchone()
    return row[0] if row else None


def ensure_root(conn: sqlite3.Connection, url: str) -> int:
    root_id = find_root(conn, url)
    if root_id is None:
        root_id = conn.execute("INSERT INTO roots (url, added_at) VALUES (?, ?)", (url, time.time())).lastrowid
    return root_id


def adopt_root(conn: sqlite3.Connection, old_root_id: int, new_root_id: int, new_url: str, prefix: bytes) -> int:
    """The root ``old_root_id`` becomes the folder ``prefix`` of ``new_root_id`` (a parent folder scanned as a
    root): its folders go under the new root with their assets, so ids, ratings, tags, notes and analyses stay
    as they are and nothing is catalogued twice; its scan history follows; its root row goes. Returns how many
    assets came along. The caller holds the transaction (and the scan lock)."""
    folders = conn.execute("SELECT id, relpath FROM folders WHERE root_id = ?", (old_root_id,)).fetchall()
    assets = 0
    for folder_id, relpath in folders:
        new_rel = join(prefix, relpath) if relpath else prefix
        conn.execute("UPDATE folders SET root_id = ?, relpath = ? WHERE id = ?", (new_root_id, new_rel, folder_id))
        conn.execute("UPDATE asset_fts SET path = ? WHERE rowid IN (SELECT id FROM assets WHERE folder_id = ?)",
                     (fts_path(new_url, new_rel), folder_id))
        assets += conn.execute("SELECT count(*) FROM assets WHERE folder_id = ?", (folder_id,)).fetchone()[0]
    conn.execute("UPDATE scans SET root_id = ? WHERE root_id = ?", (new_root_id, old_root_id))
    conn.execute("DELETE FROM roots WHERE id = ?", (old_root_id,))
    return assets


def load_folders(conn: sqlite3.Connection, root_id: int | None) -> dict[bytes, FolderRow]:
    if root_id is None:
        return {}
    return {
        r[1]: FolderRow(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5]), bool(r[6]))
        for r in conn.execute(
            "SELECT id, relpath, signature, file_count, probed, thumbed, present FROM folders WHERE root_id = ?",
            (root_id,))
    }


def ensure_folder(conn: sqlite3.Connection, root_id: int, relpath: bytes) -> int:
    row = conn.execute("SELECT id FROM folders WHERE root_id = ? AND relpath = ?", (root_id, relpath)).fetchone()
    if row:
        return row[0]
    return insert_folder(conn, root_id, relpath)


def insert_folder(conn: sqlite3.Connection, root_id: int, relpath: bytes) -> int:
    """A folder the caller knows is not catalogued (the scanner loaded them all): no lookup first."""
    return conn.execute("INSERT INTO folders (root_id, relpath) VALUES (?, ?)", (root_id, relpath)).lastrowid


def set_folder_state(conn: sqlite3.Connection, folder_id: int, signature: bytes | None, file_count: int,
                     completeness: tuple[bool, bool] | None = None) -> None:
    """Record that the catalog now matches this folder's listing (``signature``), with its completeness
    (probed, thumbed): read from its rows unless the caller wrote every one of them and knows it."""
    probed, thumbed = completeness or conn.execute(
        "SELECT coalesce(sum(status = 'unprobed'), 0) = 0,"
        " coalesce(sum(status = 'ok' AND kind != 'audio' AND thumb IS NULL), 0) = 0"
        " FROM assets WHERE folder_id = ?", (folder_id,)).fetchone()
    conn.execute(
        "UPDATE folders SET signature = ?, file_count = ?, probed = ?, thumbed = ?, present = 1, scanned_at = ?"
        " WHERE id = ?", (signature, file_count, probed, thumbed, time.time(), folder_id))


def folder_assets(conn: sqlite3.Connection, folder_id: int) -> dict[bytes, AssetRow]:
    return {
        r[1]: AssetRow(*r[:10], r[10] is not None)
        for r in conn.execute(
            "SELECT id, name, kind, size, mtime_ns, inode, device, status, fingerprint, thumb, probed_at"
            " FROM assets WHERE folder_id = ?", (folder_id,))
    }


# -- asset writes ----------------------------------------------------------------------------------------

def _content_values(summary: Mapping[str, Any] | None) -> list[Any]:
    s = summary or {}
    return [s.get(c) for c in SUMMARY_COLUMNS]


def status_for(probe: Any, error: str | None) -> str:
    if error:
        return "failed"
    return "ok" if probe is not None else "unprobed"


@dataclass(slots=True)
class NewAsset:
    """A row to insert. Ids are allocated by the scanner (it holds the scan lock) so rows and their
    search-index entries can be written in batches."""

    id: int
    folder_id: int
    stat: FileStat
    kind: str
    fingerprint: bytes | None = None
    probe: dict[str, Any] | None = None
    summary: Mapping[str, Any] | None = None
    error: str | None = None
    thumb: str | None = None


_INSERT_COLS = ("id, folder_id, name, kind, ext, size, mtime_ns, inode, device, fingerprint, status, error, probe, "
                + ", ".join(SUMMARY_COLUMNS) + ", thumb, added_at, updated_at, probed_at")
_INSERT_SQL = f"INSERT INTO assets ({_INSERT_COLS}) VALUES ({', '.join('?' * (_INSERT_COLS.count(',') + 1))})"


def next_asset_id(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(id), 0) + 1 FROM assets").fetchone()[0]


_INSERT_BARE_SQL = ("INSERT INTO assets (id, folder_id, name, kind, ext, size, mtime_ns, inode, device, status, error,"
                    " added_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def insert_unread(conn: sqlite3.Connection, folder_id: int, first_id: int, files: list[FileStat], fts_path: str
                  ) -> list[int]:
    """Insert files nobody has read yet (metadata-only scan), with ids first_id, first_id + 1, ...

    The hot path of a first index: only the columns we know, one executemany per folder; kind and
    extension are worked out once per distinct raw extension (a folder's files mostly share one).
    Empty files go in as 'failed'. Returns the ids of the empty ones."""
    now = time.time()
    values, texts, empty = [], [], []
    by_ext: dict[bytes, tuple[str, str]] = {}
    for i, (name, size, mtime_ns, inode, device, _etag) in enumerate(files, first_id):
        dot = name.rfind(b".")
        raw = name[dot + 1:] if dot > 0 else b""
        known = by_ext.get(raw)
        if known is None:
            low = raw.lower()
            known = by_ext[raw] = (kind_of_ext(low) or "video", low.decode("ascii", "replace"))
        kind, ext = known
        if size:
            values.append((i, folder_id, name, kind, ext, size, mtime_ns, inode, device, "unprobed", None, now, now))
        else:
            empty.append(i)
            values.append((i, folder_id, name, kind, ext, 0, mtime_ns, inode, device,
                           "failed", "empty file (0 bytes)", now, now))
        texts.append((i, name.decode("utf-8", "replace"), fts_path))
    conn.executemany(_INSERT_BARE_SQL, values)
    conn.executemany("INSERT INTO asset_fts (rowid, name, path, meta, tags, note) VALUES (?, ?, ?, '', '', '')", texts)
    return empty


def insert_assets(conn: sqlite3.Connection, items: list[NewAsset], fts_path: str) -> None:
    """Insert new assets of one folder, and their search-index rows."""
    now = time.time()
    values = []
    texts = []
    for a in items:
        st = a.stat
        read = a.probe is not None or a.error is not None
        values.append((
            a.id, a.folder_id, st.name, (a.summary or {}).get("kind") or a.kind,
            split_ext(st.name).decode("ascii", "replace"), st.size, st.mtime_ns, st.inode, st.device,
            a.fingerprint, status_for(a.probe, a.error), a.error, _json(a.probe), *_content_values(a.summary),
            a.thumb, now, now, now if read else None))
        texts.append((a.id, _text(st.name), fts_path, meta_text(a.summary, a.probe)))
    conn.executemany(_INSERT_SQL, values)
    conn.executemany("INSERT INTO asset_fts (rowid, name, path, meta, tags, note) VALUES (?, ?, ?, ?, '', '')", texts)


def update_content(conn: sqlite3.Connection, asset_id: int, *, stat: FileStat, fingerprint: bytes | None,
                   probe: dict[str, Any] | None, summary: Mapping[str, Any] | None, error: str | None,
                   thumb: str | None, probed: bool, kind: str | None = None) -> None:
    """A changed file (or one probed for the first time): new stat and content, same id and user data."""
    now = time.time()
    sets = ["size = ?", "mtime_ns = ?", "inode = ?", "device = ?", "updated_at = ?", "missing_since = NULL"]
    values: list[Any] = [stat.size, stat.mtime_ns, stat.inode, stat.device, now]
    if fingerprint is not None:
        sets.append("fingerprint = ?")
        values.append(fingerprint)
    if probed:
        sets += ["status = ?", "error = ?", "probe = ?", "probed_at = ?"] + [f"{c} = ?" for c in SUMMARY_COLUMNS]
        values += [status_for(probe, error), error, _json(probe), now, *_content_values(summary)]
        if summary and summary.get("kind"):
            sets.append("kind = ?")
            values.append(summary["kind"])
    else:
        # content changed but not probed this time: the old probe no longer describes the file
        sets += ["status = 'unprobed'", "error = NULL", "probe = NULL", "probed_at = NULL"] + [
            f"{c} = NULL" for c in SUMMARY_COLUMNS]
    if thumb is not None:
        sets.append("thumb = ?")
        values.append(thumb)
    elif fingerprint is not None:
        sets.append("thumb = NULL")  # keyed by the old content
    values.append(asset_id)
    conn.execute(f"UPDATE assets SET {', '.join(sets)} WHERE id = ?", values)
    if probed:
        conn.execute("UPDATE asset_fts SET meta = ? WHERE rowid = ?", (meta_text(summary, probe), asset_id))


def complete_content(conn: sqlite3.Connection, asset_id: int, *, fingerprint: bytes | None,
                     probe: dict[str, Any] | None, summary: Mapping[str, Any] | None, error: str | None,
                     thumb: str | None, probed: bool) -> None:
    """An unchanged file that gets what an earlier scan skipped (probe, thumbnail, fingerprint)."""
    sets, values = [], []
    if fingerprint is not None:
        sets.append("fingerprint = ?")
        values.append(fingerprint)
    if probed:
        sets += ["status = ?", "error = ?", "probe = ?", "probed_at = ?"] + [f"{c} = ?" for c in SUMMARY_COLUMNS]
        values += [status_for(probe, error), error, _json(probe), time.time(), *_content_values(summary)]
        if summary and summary.get("kind"):
            sets.append("kind = ?")
            values.append(summary["kind"])
    if thumb is not None:
        sets.append("thumb = ?")
        values.append(thumb)
    if not sets:
        return
    values.append(asset_id)
    conn.execute(f"UPDATE assets SET {', '.join(sets)} WHERE id = ?", values)
    if probed:
        conn.execute("UPDATE asset_fts SET meta = ? WHERE rowid = ?", (meta_text(summary, probe), asset_id))


def update_identity(conn: sqlite3.Connection, asset_id: int, stat: FileStat) -> None:
    """Same content, new inode (copied back, restored from backup, remounted share)."""
    conn.execute("UPDATE assets SET inode = ?, device = ? WHERE id = ?", (stat.inode, stat.device, asset_id))


def move_asset(conn: sqlite3.Connection, asset_id: int, *, folder_id: int, name: bytes, stat: FileStat,
               fts_path: str) -> None:
    """The file moved or was renamed: same row, so ratings, tags, notes and thumbnails follow it."""
    conn.execute(
        "UPDATE assets SET folder_id = ?, name = ?, size = ?, mtime_ns = ?, inode = ?, device = ?,"
        " status = CASE WHEN error IS NOT NULL THEN 'failed' WHEN probe IS NOT NULL THEN 'ok' ELSE 'unprobed' END,"
        " missing_since = NULL, updated_at = ? WHERE id = ?",
        (folder_id, name, stat.size, stat.mtime_ns, stat.inode, stat.device, time.time(), asset_id))
    conn.execute("UPDATE asset_fts SET name = ?, path = ? WHERE rowid = ?", (_text(name), fts_path, asset_id))


def rename_displaced(conn: sqlite3.Connection, asset_id: int) -> None:
    """Another file took this asset's name (renamed or moved over it): the row keeps its id and user data under
    a name no other row of the folder has, "NAME (replaced, #ID)", until the scan finds where it went."""
    (name,) = conn.execute("SELECT name FROM assets WHERE id = ?", (asset_id,)).fetchone()
    name += b" (replaced, #%d)" % asset_id  # bytes: || in SQL would turn the BLOB into TEXT
    conn.execute("UPDATE assets SET name = ? WHERE id = ?", (name, asset_id))
    conn.execute("UPDATE asset_fts SET name = ? WHERE rowid = ?", (_text(name), asset_id))


def set_missing_fingerprint(conn: sqlite3.Connection, asset_id: int, fingerprint: bytes) -> None:
    """Record a fingerprint computed outside a scan (``mediaidx analyze`` on a row that had none), so
    what is stored about the content can be matched with the content."""
    conn.execute("UPDATE assets SET fingerprint = ? WHERE id = ? AND fingerprint IS NULL", (fingerprint, asset_id))


def restore_asset(conn: sqlite3.Connection, asset_id: int) -> None:
    conn.execute(
        "UPDATE assets SET status = CASE WHEN error IS NOT NULL THEN 'failed' WHEN probe IS NOT NULL THEN 'ok'"
        " ELSE 'unprobed' END, missing_since = NULL, updated_at = ? WHERE id = ?", (time.time(), asset_id))


def mark_missing(conn: sqlite3.Connection, asset_ids: Iterable[int]) -> None:
    now = time.time()
    conn.executemany(
        "UPDATE assets SET status = 'missing', missing_since = ?, updated_at = ? WHERE id = ? AND status != 'missing'",
        ((now, now, i) for i in asset_ids))


def fail_asset(conn: sqlite3.Connection, asset_id: int, reason: str, stat: FileStat) -> None:
    conn.execute(
        "UPDATE assets SET status = 'failed', error = ?, size = ?, mtime_ns = ?, inode = ?, device = ?,"
        " updated_at = ? WHERE id = ?",
        (reason, stat.size, stat.mtime_ns, stat.inode, stat.device, time.time(), asset_id))


def refresh_user_text(conn: sqlite3.Connection, asset_id: int) -> None:
    """Re-index tags and note after a user edit."""
    tags = " ".join(r[0] for r in conn.execute(
        "SELECT t.name FROM asset_tags at JOIN tags t ON t.id = at.tag_id WHERE at.asset_id = ?", (asset_id,)))
    note = conn.execute("SELECT note FROM assets WHERE id = ?", (asset_id,)).fetchone()
    conn.execute("UPDATE asset_fts SET tags = ?, note = ? WHERE rowid = ?",
                 (tags, (note[0] if note else None) or "", asset_id))


# -- text for the search index -----------------------------------------------------------------------

def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def fts_path(root_url: str, folder_relpath: bytes) -> str:
    """Searchable folder text: the folder inside its root, plus the root's own last name."""
    base = root_url.rstrip("/").rsplit("/", 1)[-1]
    rel = _text(folder_relpath)
    return f"{base}/{rel}" if rel else base


def meta_text(summary: Mapping[str, Any] | None, probe: Mapping[str, Any] | None) -> str:
    """What a user may type to find a file by its metadata: codecs, camera, dates, timecode, tags in it."""
    if not summary and not probe:
        return ""
    parts: list[str] = []
    s = summary or {}
    for key in ("kind", "container", "video_codec", "audio_codec", "camera_make", "camera_model", "captured_at"):
        if s.get(key):
            parts.append(str(s[key]))
    if s.get("width") and s.get("height"):
        parts.append(f"{s['width']}x{s['height']}")
        parts.append(resolution_label(s["width"], s["height"]))
    p = probe or {}
    cam = p.get("camera") or {}
    for key in ("software", "lens", "serial"):
        if cam.get(key):
            parts.append(str(cam[key]))
    if p.get("timecode"):
        parts.append(str(p["timecode"]))
    tags = (p.get("format") or {}).get("tags") or {}
    for key, value in tags.items():
        k = key.lower()
        if any(w in k for w in ("title", "comment", "description", "keywords", "artist", "album", "author")):
            parts.append(str(value))
    exif = (p.get("image") or {}).get("exif") or {}
    for key in ("lens_model", "lens_make", "software"):
        if exif.get(key):
            parts.append(str(exif[key]))
    return " ".join(parts)


def resolution_label(width: int, height: int) -> str:
    """The name people use for a frame size: 8k, 6k, 4k, 2k, 1080p, 720p, sd; 'vertical' when portrait."""
    long_side, short_side = max(width, height), min(width, height)
    if long_side >= 7680:
        label = "8k"
    elif long_side >= 5760:
        label = "6k"
    elif long_side >= 3840:
        label = "4k"
    elif long_side >= 2048:
        label = "2k"
    elif short_side >= 1080 or long_side >= 1920:
        label = "1080p"
    elif short_side >= 720 or long_side >= 1280:
        label = "720p"
    else:
        label = "sd"
    return label


def _json(obj: Any) -> str | None:
    return None if obj is None else json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)
