"""Library statistics for `mediaidx stats`, the dashboard charts and workflow reports."""

from __future__ import annotations

import sqlite3

from ..models import Stats

PRESENT = "a.status != 'missing'"
RESOLUTION_BUCKET = (
    "CASE WHEN a.width IS NULL THEN NULL"
    " WHEN max(a.width, a.height) >= 7680 THEN '8k' WHEN max(a.width, a.height) >= 5760 THEN '6k'"
    " WHEN max(a.width, a.height) >= 3840 THEN '4k' WHEN max(a.width, a.height) >= 2048 THEN '2k'"
    " WHEN min(a.width, a.height) >= 1080 OR max(a.width, a.height) >= 1920 THEN '1080p'"
    " WHEN min(a.width, a.height) >= 720 OR max(a.width, a.height) >= 1280 THEN '720p' ELSE 'sd' END"
)


# "Canon" + "Canon EOS 7D" reads "Canon EOS 7D", not "Canon Canon EOS 7D".
CAMERA = ("nullif(trim(CASE WHEN a.camera_model LIKE a.camera_make || '%' THEN a.camera_model"
          " ELSE coalesce(a.camera_make, '') || ' ' || coalesce(a.camera_model, '') END), '')")


def _grouped(conn: sqlite3.Connection, expr: str, where: str = PRESENT, limit: int = 50) -> dict[str, int]:
    sql = (f"SELECT {expr} AS k, count(*) FROM assets a WHERE {where} AND k IS NOT NULL"
           f" GROUP BY k ORDER BY count(*) DESC, k LIMIT {int(limit)}")
    return {str(k): n for k, n in conn.execute(sql)}


def library_stats(conn: sqlite3.Connection) -> Stats:
    s = Stats()
    s.assets = conn.execute("SELECT count(*) FROM assets").fetchone()[0]
    s.by_status = {k: n for k, n in conn.execute("SELECT status, count(*) FROM assets GROUP BY status ORDER BY 2 DESC")}
    s.present, s.total_size, s.total_duration = conn.execute(
        f"SELECT count(*), coalesce(sum(size), 0), coalesce(sum(duration), 0) FROM assets a WHERE {PRESENT}"
    ).fetchone()
    s.by_kind = _grouped(conn, "a.kind")
    s.size_by_kind = {k: n for k, n in conn.execute(
        f"SELECT kind, sum(size) FROM assets a WHERE {PRESENT} GROUP BY kind ORDER BY 2 DESC")}
    s.by_container = _grouped(conn, "a.container")
    s.by_video_codec = _grouped(conn, "a.video_codec")
    s.by_audio_codec = _grouped(conn, "a.audio_codec")
    s.by_resolution = _grouped(conn, RESOLUTION_BUCKET)
    s.by_camera = _grouped(conn, CAMERA)
    s.by_month = dict(sorted(_grouped(conn, "substr(a.captured_at, 1, 7)", limit=1000).items()))
    s.tags = {k: n for k, n in conn.execute(
        "SELECT t.name, count(*) FROM asset_tags x JOIN tags t ON t.id = x.tag_id GROUP BY t.id"
        " ORDER BY 2 DESC, 1 LIMIT 100")}
    s.rated = conn.execute("SELECT count(*) FROM assets WHERE rating IS NOT NULL").fetchone()[0]
    s.roots = [
        {"url": url, "assets": n or 0, "size": size or 0, "last_scan_at": last}
        for url, last, n, size in conn.execute(
            "SELECT r.url, r.last_scan_at, count(a.id), sum(a.size) FROM roots r"
            " LEFT JOIN folders f ON f.root_id = r.id"
            " LEFT JOIN assets a ON a.folder_id = f.id AND a.status != 'missing'"
            " GROUP BY r.id ORDER BY r.url")
    ]
    return s
