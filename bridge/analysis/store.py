"""Analysis results in the catalog: the ``analyses``, ``shots`` and ``keyframes`` tables, and hero files.

The worker half (``run_for_catalog``) analyses a clip and writes its hero JPEG into the thumbnail cache,
keyed by content fingerprint like thumbnails (so moves keep it and duplicates share it), and returns plain
data; the main-thread half (``write_analysis``) writes the rows, since only one thread writes the catalog.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, BinaryIO

HERO_SIZE = 640              # long side of the hero JPEG in the cache


def hero_relpath(fingerprint: bytes) -> str:
    """Beside the asset's thumbnail: ``<fp[:2]>/<fp>.hero.jpg`` inside the thumbnail cache."""
    h = fingerprint.hex()
    return f"{h[:2]}/{h}.hero.jpg"


def run_for_catalog(source: str | bytes | BinaryIO, fingerprint: bytes | None,
                    thumbs_dir: str | os.PathLike[str] | None, *, threads: int = 0, overwrite: bool = False,
                    name: str | None = None, rotation: float | None = None) -> dict[str, Any]:
    """Analyse one clip for the catalog (in scan workers, with ``threads=1``): a picklable record, never an
    exception for a bad file (then the record carries ``error``). ``source`` is a local path or a file
    object (a remote file, read whole; ``name``, its URL, names it in messages). OSErrors (a vanished file,
    a storage that stopped answering) go to the caller as they are."""
    from .decode import AnalysisError
    from .pipeline import ANALYSIS_VERSION, analyze_video, write_hero

    try:
        src = os.fsdecode(source) if isinstance(source, str | bytes) else source
        a = analyze_video(src, threads=threads, name=name, rotation=rotation)
    except AnalysisError as exc:
        return {"version": ANALYSIS_VERSION, "error": str(exc).split(": ", 1)[-1]}
    hero_rel = ""
    if a.hero is not None and fingerprint is not None and thumbs_dir:
        rel = hero_relpath(fingerprint)
        dest = Path(thumbs_dir) / rel
        if overwrite or not dest.exists():  # same content, same hero: a scan reuses a duplicate's
            write_hero(a, dest, max_side=HERO_SIZE, quality=88)
        hero_rel = rel
    d = a.to_dict()
    return {"version": ANALYSIS_VERSION, "error": None, "frames": d["frames"], "fps": d["video"]["fps"],
            "shots": d["shots"], "hero": d["hero"], "hero_path": hero_rel}


def write_analysis(conn: sqlite3.Connection, asset_id: int, fingerprint: bytes | None, record: dict[str, Any]
                   ) -> None:
    """Replace the asset's analysis rows with ``record`` (call inside the writer's transaction)."""
    conn.execute("DELETE FROM shots WHERE asset_id = ?", (asset_id,))
    conn.execute("DELETE FROM keyframes WHERE asset_id = ?", (asset_id,))
    hero = record.get("hero") or {}
    shots = record.get("shots") or []
    conn.execute(
        "INSERT OR REPLACE INTO analyses (asset_id, fingerprint, version, analyzed_at, frames, fps, shot_count,"
        " hero, hero_frame, hero_time, hero_scores, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (asset_id, fingerprint, record.get("version", 0), time.time(), record.get("frames"), record.get("fps"),
         len(shots), record.get("hero_path", ""), hero.get("frame"), hero.get("time"),
         json.dumps(hero.get("scores")) if hero else None, record.get("error")))
    conn.executemany(
        "INSERT INTO shots (asset_id, idx, start_frame, end_frame, start_time, end_time, boundary, score,"
        " transition_start, transition_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(asset_id, s["index"], s["start_frame"], s["end_frame"], s["start_time"], s["end_time"], s["boundary"],
          s["score"], *(s["transition"] or (None, None))) for s in shots])
    conn.executemany(
        "INSERT INTO keyframes (asset_id, shot, frame, time, scores) VALUES (?, ?, ?, ?, ?)",
        [(asset_id, s["index"], s["keyframe"]["frame"], s["keyframe"]["time"], json.dumps(s["keyframe"]["scores"]))
         for s in shots if s.get("keyframe")])


# An analysis describes the content it was made from: once the file changes (a render overwritten in place,
# rescanned without --analyze) its shots and hero image are stale and are not shown.
_CURRENT = ("SELECT 1 FROM analyses an JOIN assets a ON a.id = an.asset_id WHERE an.asset_id = ?"
            " AND an.fingerprint IS a.fingerprint")


def is_current(conn: sqlite3.Connection, asset_id: int) -> bool:
    """Whether the asset's stored analysis was made from its present content."""
    return conn.execute(_CURRENT, (asset_id,)).fetchone() is not None


def pending_assets(conn: sqlite3.Connection, root_url: str | None = None) -> list[int]:
    """Present videos without an analysis of their current content by this version (never analysed, changed
    since, or analysed by an older version): what ``mediaidx analyze --pending`` works through. A library
    scanned without --analyze gets its analyses this way; a scan only analyses new and changed clips. A clip
    whose analysis failed is not pending (it would fail again every run), nor one whose hero image left the
    cache (a cache check per clip); ``mediaidx analyze ID`` redoes either."""
    from .pipeline import ANALYSIS_VERSION

    sql = ("SELECT a.id FROM assets a JOIN folders f ON f.id = a.folder_id JOIN roots r ON r.id = f.root_id"
           " LEFT JOIN analyses an ON an.asset_id = a.id"
           " WHERE a.kind = 'video' AND a.status IN ('ok', 'unprobed')"
           " AND (an.asset_id IS NULL OR an.version != ? OR an.fingerprint IS NOT a.fingerprint"
           " OR a.fingerprint IS NULL)")
    params: list[Any] = [ANALYSIS_VERSION]
    if root_url is not None:
        sql += " AND r.url = ?"
        params.append(root_url)
    return [i for (i,) in conn.execute(sql + " ORDER BY a.id", params)]


def load_shots(conn: sqlite3.Connection, asset_id: int) -> list[dict[str, Any]]:
    """The stored shots, each with its key frame (or None); none when the file changed since."""
    if not is_current(conn, asset_id):
        return []
    keys = {shot: {"frame": frame, "time": t, "scores": json.loads(scores)} for shot, frame, t, scores in conn.execute(
        "SELECT shot, frame, time, scores FROM keyframes WHERE asset_id = ?", (asset_id,))}
    out = []
    for idx, sf, ef, st, et, boundary, score, ts, te in conn.execute(
            "SELECT idx, start_frame, end_frame, start_time, end_time, boundary, score, transition_start,"
            " transition_end FROM shots WHERE asset_id = ? ORDER BY idx", (asset_id,)):
        out.append({"index": idx, "start_frame": sf, "end_frame": ef, "start_time": st, "end_time": et,
                    "boundary": boundary, "score": score, "transition": [ts, te] if ts is not None else None,
                    "keyframe": keys.get(idx)})
    return out


def load_analysis(conn: sqlite3.Connection, asset_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT fingerprint, version, analyzed_at, frames, fps, shot_count, hero, hero_frame, hero_time, hero_scores,"
        " error FROM analyses WHERE asset_id = ?", (asset_id,)).fetchone()
    if row is None:
        return None
    fp, version, at, frames, fps, count, hero, hframe, htime, hscores, error = row
    return {"fingerprint": fp.hex() if fp else None, "version": version, "analyzed_at": at, "frames": frames,
            "fps": fps, "shot_count": count, "hero": hero or None, "hero_frame": hframe, "hero_time": htime,
            "hero_scores": json.loads(hscores) if hscores else None, "error": error}


def hero_file(conn: sqlite3.Connection, asset_id: int, thumbs_dir: Path) -> Path | None:
    """The hero JPEG of an asset when one was made from its present content and is still in the cache."""
    row = conn.execute("SELECT hero FROM analyses WHERE asset_id = ?", (asset_id,)).fetchone()
    if not row or not row[0] or not is_current(conn, asset_id):
        return None
    path = thumbs_dir / row[0]
    return path if path.is_file() else None


def hero_paths(conn: sqlite3.Connection) -> set[str]:
    """Hero files the catalog refers to (``prune`` keeps them)."""
    return {h for (h,) in conn.execute("SELECT hero FROM analyses WHERE hero IS NOT NULL AND hero != ''")}


def _up_to_date(conn: sqlite3.Connection, asset_id: int, thumbs_dir: Path) -> dict[str, Any] | None:
    """The stored result (shot count, hero file) when the asset's analysis is of its present content, by this
    ANALYSIS_VERSION, without an error, and its hero file (if it has one) is still in the cache; else None."""
    from .pipeline import ANALYSIS_VERSION

    stored = load_analysis(conn, asset_id)
    if stored is None or stored["version"] != ANALYSIS_VERSION or stored["error"] or not is_current(conn, asset_id):
        return None
    hero = hero_file(conn, asset_id, thumbs_dir)
    if stored["hero"] and hero is None:
        return None
    return {"shots": stored["shot_count"], "hero": str(hero) if hero else None}


def _naming(exc: OSError, label: str) -> OSError:
    """``exc`` with the file's path or URL as its filename (the CLI prints ``<url>: <reason>``); same type,
    so a StorageUnreachable stays one."""
    if exc.filename and not isinstance(exc.filename, bytes):   # a local path as bytes would print as b'...'
        return exc
    try:
        return type(exc)(exc.errno or errno.EIO, exc.strerror or str(exc), label)
    except Exception:  # an OSError subclass with its own constructor
        return OSError(exc.errno or errno.EIO, exc.strerror or str(exc), label)


def analyze_asset(ix: Any, ref: str | int, *, dry_run: bool = False) -> dict[str, Any]:
    """``MediaIndexer.analyze``: analyse a catalogued clip and store the result (or, dry, plan it)."""
    from ..catalog import Catalog
    from ..catalog import search as search_mod
    from ..catalog.assets import set_missing_fingerprint
    from ..errors import UsageError
    from ..models import PlanItem
    from ..scan.fingerprint import fingerprint_fileobj, fingerprint_path
    from ..storage import open_storage

    db = Catalog(ix.catalog_path, readonly=True) if dry_run else ix._write_db()
    fh: Any = None
    try:
        asset_id = search_mod.resolve(db.conn, ref)
        kind, size, mtime_ns, fingerprint = db.conn.execute(
            "SELECT kind, size, mtime_ns, fingerprint FROM assets WHERE id = ?", (asset_id,)).fetchone()
        had_fingerprint = fingerprint is not None
        if kind != "video":
            raise UsageError(f"asset {asset_id} is {'an' if kind in ('image', 'audio') else 'a'} {kind}, not a video")
        url, rel = search_mod.native_path(db.conn, asset_id)
        storage = open_storage(url)  # as the scan does: a local folder, or a remote root by its stored URL
        local = storage.local_path(rel)
        label = os.fsdecode(local) if local is not None else storage.display(rel)
        try:
            # The analysis is filed under the catalogued content's fingerprint (and its hero file, which copies of
            # that content share): a file changed since its scan would put another clip's shots and hero there.
            if local is not None:   # os.stat: a catalogued link was followed by its scan
                st = os.stat(local)
                changed = st.st_size != size or st.st_mtime_ns != mtime_ns
            else:                   # a remote listing's times may not match a stat's: the size tells
                changed = storage.stat(rel).size != size
            if changed:
                raise UsageError(f"{label}: changed since it was scanned; scan it again before analysing it")
            done = _up_to_date(db.conn, asset_id, Path(ix.thumbs_dir))
            if done is not None:   # analysed from this very content by this version: nothing to do
                return {"dry_run": dry_run, "asset": asset_id, "up_to_date": True,
                        **({"plan": []} if dry_run else {"error": None}), **done}
            if local is None and (fingerprint is None or not dry_run):
                fh = storage.open(rel, size)  # size from the catalog: no stat request
            if fingerprint is None:
                fingerprint = fingerprint_path(local, size) if local is not None else fingerprint_fileobj(fh, size)
            dest = Path(ix.thumbs_dir) / hero_relpath(fingerprint)
            plan = [PlanItem("analyze", label, asset_id, kind=kind, reason="shots, key frames, hero image")]
            plan.append(PlanItem("write", str(dest), asset_id, reason=f"hero image of {label}"))
            if dry_run:
                return {"dry_run": True, "asset": asset_id, "plan": [p.to_dict() for p in plan]}
            if fh is not None and hasattr(fh, "sequential"):
                fh.sequential()  # the whole clip is decoded: large sequential read-ahead
            record = run_for_catalog(local if local is not None else fh, fingerprint, ix.thumbs_dir,
                                     overwrite=True, name=label)
        except OSError as exc:
            raise _naming(exc, label) from None
        with db.transaction() as conn:
            if not had_fingerprint:
                set_missing_fingerprint(conn, asset_id, fingerprint)
            write_analysis(conn, asset_id, fingerprint, record)
        hero = hero_file(db.conn, asset_id, Path(ix.thumbs_dir))
        return {"dry_run": False, "asset": asset_id, "shots": len(record.get("shots") or []),
                "hero": str(hero) if hero else None, "error": record.get("error")}
    finally:
        if fh is not None:
            fh.close()
        if dry_run:
            db.close()
