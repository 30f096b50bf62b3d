"""Finding assets: full-text search (FTS5) plus filters, sorting and paging, all in one SQL query."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, UsageError
from ..mediatypes import KINDS
from ..models import Asset
from ..storage import join
from .usermeta import check_text

RESOLUTIONS = {  # label -> minimum long side, minimum short side
    "8k": (7680, 0), "6k": (5760, 0), "4k": (3840, 0), "uhd": (3840, 0), "2k": (2048, 0),
    "1080p": (1920, 1080), "hd": (1280, 720), "720p": (1280, 720), "sd": (0, 0),
}

SORTS = {
    "relevance": None,
    "added": "a.id",                # ids grow with time: no index on added_at needed
    "captured": "a.captured_utc",
    "name": "a.name",
    "duration": "a.duration",
    "size": "a.size",
    "rating": "a.rating",
    "updated": "a.updated_at",
}


@dataclass
class SearchFilters:
    """Filters shared by the CLI, the Python API and the services. Every field is optional."""

    kind: str | None = None                 # video | audio | image
    codec: str | None = None                # video or audio codec name (h264, hevc, prores, aac...)
    resolution: str | None = None           # 4k, 1080p, 720p, sd, or WxH meaning at least that size
    min_duration: float | None = None       # seconds
    max_duration: float | None = None
    has_audio: bool | None = None
    date_from: str | None = None            # capture date, YYYY[-MM[-DD]] (the file's own local date)
    date_to: str | None = None
    camera: str | None = None               # substring of make or model, case-insensitive
    tags: list[str] = field(default_factory=list)  # all of them
    min_rating: int | None = None
    status: str | None = None               # default: everything but missing
    root: str | None = None
    sort: str = "relevance"
    descending: bool = True
    limit: int = 50
    offset: int = 0

    @classmethod
    def from_kwargs(cls, **kw: Any) -> SearchFilters:
        known = {f.name for f in fields(cls)}
        unknown = set(kw) - known
        if unknown:
            raise UsageError(f"unknown filter(s): {', '.join(sorted(unknown))}")
        if isinstance(kw.get("tags"), str):
            kw["tags"] = [kw["tags"]]
        return cls(**{k: v for k, v in kw.items() if v is not None})


ASSET_COLUMNS = (
    "a.id, r.url, f.relpath, a.name, a.kind, a.ext, a.size, a.mtime_ns, a.status, a.error, a.container,"
    " a.video_codec, a.audio_codec, a.width, a.height, a.duration, a.fps_num, a.fps_den, a.has_audio,"
    " a.audio_silent, a.captured_at, a.camera_make, a.camera_model, a.thumb, a.rating, a.note, a.fingerprint,"
    " a.added_at, a.updated_at, a.missing_since,"
    " (SELECT group_concat(t.name, char(31)) FROM asset_tags x JOIN tags t ON t.id = x.tag_id"
    "  WHERE x.asset_id = a.id)"
)
FROM = " FROM assets a JOIN folders f ON f.id = a.folder_id JOIN roots r ON r.id = f.root_id"
# With words to match, the full-text index drives the query (CROSS JOIN fixes the loop order), so a page
# of results in rowid (= recency) order stops after one page even when the words match everything.
FROM_FTS = (" FROM asset_fts CROSS JOIN assets a ON a.id = asset_fts.rowid JOIN folders f ON f.id = a.folder_id"
            " JOIN roots r ON r.id = f.root_id")
RANK_LIMIT = 2000  # above this many matches, relevance ranking costs more than it tells: newest first instead
STATUSES = ("ok", "unprobed", "failed", "missing")
MAX_SQL_INT = 2**63 - 1  # larger Python ints cannot be bound to SQLite (OverflowError)


def fts_query(text: str) -> str | None:
    """User words to an FTS5 query: every word must match (as a prefix), "quoted phrases" stay phrases,
    -word excludes. Nothing the user types can be an FTS syntax error."""
    positives: list[str] = []
    negatives: list[str] = []
    for m in re.finditer(r'(-?)"([^"]*)"|(-?)(\S+)', text):
        if m.group(2) is not None:
            neg, term, phrase = m.group(1), m.group(2), True
        else:
            neg, term, phrase = m.group(3), m.group(4), False
        words = re.findall(r"\w+", term)
        if not words:
            continue
        quoted = '"' + " ".join(words) + '"' if phrase else " ".join(f'"{w}"*' for w in words)
        (negatives if neg else positives).append(quoted)
    if not positives:
        return None
    q = " AND ".join(positives)
    if negatives:  # one flat OR: nesting a NOT per word overflows the FTS5 parser at a few hundred words
        q = f"({q}) NOT ({' OR '.join(negatives)})"
    return q


def where_clause(query: str | None, flt: SearchFilters) -> tuple[str, str, list[Any]]:
    """(FROM ..., WHERE ..., parameters) for a query and filters."""
    source, where, params = FROM, [], []
    for text in (flt.kind, flt.codec, flt.resolution, flt.camera, flt.status, flt.root, *flt.tags):
        if isinstance(text, str):
            check_text(text, "filter")  # a shell argument such as $'\xff' (a lone surrogate) fails in SQLite
    if query and query.strip():
        match = fts_query(query)
        if match is None:
            raise UsageError(f"nothing to search for in {query!r}")
        source = FROM_FTS
        where.append("asset_fts MATCH ?")
        params.append(match)
    if flt.status and flt.status not in STATUSES:
        raise UsageError(f"unknown status {flt.status!r} (use {', '.join(STATUSES)})")
    if flt.kind and flt.kind not in KINDS:
        raise UsageError(f"unknown kind {flt.kind!r} (use {', '.join(KINDS)})")
    if flt.status:
        where.append("a.status = ?")
        params.append(flt.status)
    else:
        where.append("a.status != 'missing'")
    if flt.kind:
        where.append("a.kind = ?")
        params.append(flt.kind)
    if flt.codec:
        where.append("(lower(a.video_codec) = lower(?) OR lower(a.audio_codec) = lower(?))")
        params += [flt.codec, flt.codec]
    if flt.resolution:
        where.append(_resolution_clause(flt.resolution, params))
    if flt.min_duration is not None:
        where.append("a.duration >= ?")
        params.append(flt.min_duration)
    if flt.max_duration is not None:
        where.append("a.duration <= ?")
        params.append(flt.max_duration)
    if flt.has_audio is not None:
        where.append("a.has_audio = ?" if flt.has_audio else "coalesce(a.has_audio, 0) = ?")
        params.append(1 if flt.has_audio else 0)
    if flt.date_from:
        where.append("substr(a.captured_at, 1, 10) >= ?")
        params.append(_date_bound(flt.date_from, low=True))
    if flt.date_to:
        where.append("substr(a.captured_at, 1, 10) <= ?")
        params.append(_date_bound(flt.date_to, low=False))
    if flt.camera:
        where.append("(coalesce(a.camera_make, '') || ' ' || coalesce(a.camera_model, '')) LIKE ? ESCAPE '\\'")
        params.append("%" + flt.camera.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    for tag in flt.tags:  # IN (the tag's asset ids) is driven by the tag index: 0.3 ms, not a probe per asset
        where.append("a.id IN (SELECT x.asset_id FROM asset_tags x JOIN tags t ON t.id = x.tag_id"
                     " WHERE t.name = ? OR casefold(t.name) = ?)")  # any script's case (database.py)
        params += [tag, tag.casefold()]
    if flt.min_rating is not None:
        where.append("a.rating >= ?")
        params.append(flt.min_rating)
    if flt.root:
        where.append("r.url = ?")
        params.append(root_url(flt.root))
    return source, (" WHERE " + " AND ".join(where)) if where else "", params


def root_url(root: str) -> str:
    return root if "://" in root else os.path.abspath(root).rstrip("/") or "/"


def _resolution_clause(value: str, params: list[Any]) -> str:
    v = value.strip().lower()
    m = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", v)
    if m:
        w, h = int(m.group(1)), int(m.group(2))
        if max(w, h) > 1_000_000:
            raise UsageError(f"resolution {value!r} is too large")
        params += [max(w, h), min(w, h)]
        return "(max(a.width, a.height) >= ? AND min(a.width, a.height) >= ?)"
    if v not in RESOLUTIONS:
        raise UsageError(f"unknown resolution {value!r} (use 8k, 6k, 4k, 2k, 1080p, 720p, sd or WxH)")
    if v == "sd":
        return "(max(a.width, a.height) < 1280 AND min(a.width, a.height) < 720)"
    long_side, short_side = RESOLUTIONS[v]
    params += [long_side, short_side]
    return "(max(a.width, a.height) >= ? AND min(a.width, a.height) >= ?)"


def _date_bound(value: str, *, low: bool) -> str:
    v = value.strip()
    if not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", v):
        raise UsageError(f"bad date {value!r}: use YYYY, YYYY-MM or YYYY-MM-DD")
    try:  # the shape alone lets 2024-13-01 through, which would quietly match nothing
        dt.date.fromisoformat(v if len(v) == 10 else (v + "-01-01")[:10])
    except ValueError:
        raise UsageError(f"bad date {value!r}: no such day") from None
    if len(v) == 4:
        return f"{v}-01-01" if low else f"{v}-12-31"
    if len(v) == 7:
        return f"{v}-01" if low else f"{v}-31"
    return v


def search(conn: sqlite3.Connection, query: str | None, flt: SearchFilters, thumbs_dir: Path | None = None
           ) -> list[Asset]:
    source, where, params = where_clause(query, flt)
    fts = source is FROM_FTS
    sort = flt.sort or "relevance"
    if sort not in SORTS:
        raise UsageError(f"unknown sort {sort!r} (use {', '.join(SORTS)})")
    direction = "DESC" if flt.descending else "ASC"
    newest = "asset_fts.rowid DESC" if fts else "a.id DESC"
    if sort == "relevance":
        order = "asset_fts.rank" if fts and not _many_matches(conn, params[0]) else newest
    elif sort == "added":
        order = f"{'asset_fts.rowid' if fts else 'a.id'} {direction}"
    else:
        order = f"{SORTS[sort]} {direction} NULLS LAST, a.id {direction}"
    limit = max(0, min(int(flt.limit), 10_000))
    sql = f"SELECT {ASSET_COLUMNS}{source}{where} ORDER BY {order} LIMIT ? OFFSET ?"
    offset = min(max(0, int(flt.offset)), MAX_SQL_INT)
    return [row_to_asset(r, thumbs_dir) for r in conn.execute(sql, [*params, limit, offset])]


def _many_matches(conn: sqlite3.Connection, match: str) -> bool:
    return conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM asset_fts WHERE asset_fts MATCH ? LIMIT {RANK_LIMIT + 1})",
                        (match,)).fetchone()[0] > RANK_LIMIT


def count(conn: sqlite3.Connection, query: str | None, flt: SearchFilters, cap: int | None = None) -> int:
    """How many assets match; with ``cap``, counting stops there (interactive callers show "10,000+")."""
    source, where, params = where_clause(query, flt)
    if source == FROM and not flt.root:
        source = " FROM assets a"  # every asset has a folder and a root: the joins would only cost time
    if cap is None:
        return conn.execute(f"SELECT count(*){source}{where}", params).fetchone()[0]
    return conn.execute(f"SELECT count(*) FROM (SELECT 1{source}{where} LIMIT ?)", [*params, int(cap)]).fetchone()[0]


def recent(conn: sqlite3.Connection, n: int, thumbs_dir: Path | None = None, kind: str | None = None) -> list[Asset]:
    flt = SearchFilters(kind=kind, sort="added", limit=n)
    return search(conn, None, flt, thumbs_dir)


def get_asset(conn: sqlite3.Connection, asset_id: int, thumbs_dir: Path | None = None, *, with_probe: bool = True
              ) -> Asset:
    row = conn.execute(f"SELECT {ASSET_COLUMNS}{FROM} WHERE a.id = ?", (asset_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no asset with id {asset_id}")
    asset = row_to_asset(row, thumbs_dir)
    if with_probe:
        probe = conn.execute("SELECT probe FROM assets WHERE id = ?", (asset_id,)).fetchone()[0]
        asset.probe = json.loads(probe) if probe else None
    return asset


def resolve(conn: sqlite3.Connection, ref: str | int) -> int:
    """An asset id from an id, a path (absolute or relative to the working directory) or a remote URL."""
    # ASCII digits only: str.isdigit() also accepts '²' or '①', which int() refuses
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isascii() and ref.isdigit() and not os.path.exists(ref)):
        asset_id = int(ref)
        if not 0 < asset_id <= MAX_SQL_INT:  # too large for SQLite: no such asset either
            raise NotFoundError(f"no asset with id {asset_id}")
        if conn.execute("SELECT 1 FROM assets WHERE id = ?", (asset_id,)).fetchone() is None:
            raise NotFoundError(f"no asset with id {asset_id}")
        return asset_id
    remote = isinstance(ref, str) and "://" in ref
    path = os.fsencode(ref) if remote else os.path.abspath(os.fsencode(ref))
    for root_id, url in conn.execute("SELECT id, url FROM roots ORDER BY length(url) DESC"):
        if ("://" in url) != remote:
            continue  # a remote asset is named by its URL as `show` prints it (root URL + key)
        root = os.fsencode(url)
        prefix = root if root.endswith(b"/") else root + b"/"
        if path.startswith(prefix):
            rel = path[len(prefix):]
            folder, _, name = rel.rpartition(b"/")
            row = conn.execute(
                "SELECT a.id FROM assets a JOIN folders f ON f.id = a.folder_id"
                " WHERE f.root_id = ? AND f.relpath = ? AND a.name = ?", (root_id, folder, name)).fetchone()
            if row:
                return row[0]
    raise NotFoundError(f"{ref}: not in the catalog (scan its folder first)")


def row_to_asset(r: tuple[Any, ...], thumbs_dir: Path | None) -> Asset:
    (asset_id, url, folder, name, kind, ext, size, mtime_ns, status, error, container, vcodec, acodec, width,
     height, duration, fps_num, fps_den, has_audio, silent, captured, make, model, thumb, rating, note, fp,
     added, updated, missing_since, tags) = r
    relpath = join(folder, name).decode("utf-8", "backslashreplace")
    return Asset(
        id=asset_id,
        path=f"{url.rstrip('/')}/{relpath}",
        root=url,
        relpath=relpath,
        name=name.decode("utf-8", "backslashreplace"),
        kind=kind, ext=ext, size=size, mtime=mtime_ns / 1e9, status=status, error=error,
        container=container, video_codec=vcodec, audio_codec=acodec, width=width, height=height,
        duration=duration, fps=f"{fps_num}/{fps_den}" if fps_num and fps_den else None,
        has_audio=None if has_audio is None else bool(has_audio),
        audio_silent=None if silent is None else bool(silent),
        captured_at=captured, camera_make=make, camera_model=model,
        thumb=str(thumbs_dir / thumb) if (thumb and thumbs_dir) else None,
        rating=rating, note=note, tags=sorted(tags.split("\x1f"), key=str.casefold) if tags else [],
        fingerprint=fp.hex() if fp else None, added_at=added, updated_at=updated, missing_since=missing_since,
    )


def native_path(conn: sqlite3.Connection, asset_id: int) -> tuple[str, bytes]:
    """(root url, exact relative path bytes) of an asset, for code that opens the file."""
    row = conn.execute(
        "SELECT r.url, f.relpath, a.name" + FROM + " WHERE a.id = ?", (asset_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no asset with id {asset_id}")
    return row[0], join(row[1], row[2])
