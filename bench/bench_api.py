#!/usr/bin/env python3
"""The dashboard grid's API on a 100,000-asset catalog: `GET /api/assets` (page of 100, total counted up to
10,000) over HTTP with httpx against a live `mediaidx serve` (uvicorn) on loopback. Target: median under 50 ms.

The catalog is made the way a scan makes it (100,000 small files, `scan --no-probe`); then the probe columns
get synthetic values (kinds, sizes, durations, capture dates, cameras, ratings, tags) so sorts and filters see
realistic distributions. Anchor: the same SQL in-process (search + count), so the HTTP/JSON share is visible.

    .venv/bin/python bench/bench_api.py [--assets 100000] [--calls 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bridge import MediaIndexer  # noqa: E402
from bridge.catalog import search as search_mod  # noqa: E402

QUERIES = {
    "grid: newest first": {},
    "kind=video": {"kind": "video"},
    "sort=captured": {"sort": "captured"},
    "sort=name asc": {"sort": "name", "order": "asc"},
    "camera + 1080p": {"camera": "alexa", "resolution": "1080p"},
    "min_rating=3": {"min_rating": 3},
    "tag=selects": {"tag": "selects"},
    "q=harbour (matches all)": {"q": "harbour"},
    "q=A042 C1 (selective)": {"q": "A042 C1"},
}


def build(work: Path, assets: int) -> tuple[Path, Path]:
    root = work / f"tree-{assets}"
    cat = work / f"api-{assets}.sqlite"
    cache = work / "api-cache"
    if cat.exists():
        return cat, cache
    for i in range(assets):
        d = root / f"day{i // 5000:02d}" / f"roll{(i // 100) % 50:02d}"
        if i % 100 == 0:
            d.mkdir(parents=True, exist_ok=True)
        ext = ("mov", "mp4", "jpg", "wav")[i % 4]
        (d / f"A{i // 1000:03d}_C{i % 1000:03d}_harbour.{ext}").write_bytes(b"\0" * (1 + i % 977))
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(root, probe=False)
        conn = ix._write_db().conn
        rng = random.Random(7)
        cams = [("ARRI", "ALEXA Mini"), ("Sony", "FX6"), ("Apple", "iPhone 15 Pro"), ("Canon", "EOS R5"), (None, None)]
        rows = []
        for (aid, kind) in conn.execute("SELECT id, kind FROM assets").fetchall():
            w, h = rng.choice([(1920, 1080), (3840, 2160), (1280, 720), (4096, 2160), (720, 576)])
            make, model = rng.choice(cams)
            day = f"20{rng.randint(18, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            rows.append((w if kind != "audio" else None, h if kind != "audio" else None,
                         rng.uniform(1, 600) if kind != "image" else None, f"{day}T10:00:00",
                         time.mktime(time.strptime(day, "%Y-%m-%d")), make, model,
                         rng.choice([None, None, None, 1, 2, 3, 4, 5]), "h264" if kind == "video" else None, aid))
        conn.execute("BEGIN")
        conn.executemany("UPDATE assets SET status = 'ok', width = ?, height = ?, duration = ?, captured_at = ?,"
                         " captured_utc = ?, camera_make = ?, camera_model = ?, rating = ?, video_codec = ?"
                         " WHERE id = ?", rows)
        conn.execute("COMMIT")
        ids = [r[0] for r in conn.execute("SELECT id FROM assets ORDER BY random() LIMIT ?", (assets // 50,))]
    with MediaIndexer(cat, cache_dir=cache) as ix:
        for chunk in range(0, len(ids), 500):
            for aid in ids[chunk:chunk + 500]:
                ix.tag(aid, ["selects"])
        ix._write_db().conn.execute("PRAGMA optimize")
    return cat, cache


def serve(cat: Path, cache: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "bridge.cli.app", "--catalog", str(cat), "--cache-dir", str(cache),
                             "serve", "--bind", "tcp://127.0.0.1:*", "--http", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    proc.stdout.readline()
    url = proc.stdout.readline().split("dashboard on ", 1)[1].split()[0].rstrip("/")
    return proc, url


def in_process(cat: Path, cache: Path, params: dict, calls: int) -> float:
    """The anchor: search + capped count for the same filters, straight on SQLite."""
    with MediaIndexer(cat, cache_dir=cache) as ix:
        conn = ix._read_db().conn
        kw = {k: v for k, v in params.items() if k not in ("q", "order", "tag", "sort")}
        if "tag" in params:
            kw["tags"] = [params["tag"]]
        flt = search_mod.SearchFilters.from_kwargs(**kw, descending=params.get("order", "desc") == "desc",
                                                   limit=100, sort=params.get("sort", "added"))
        lat = []
        for _ in range(calls):
            t0 = time.perf_counter()
            search_mod.search(conn, params.get("q"), flt, ix.thumbs_dir)
            search_mod.count(conn, params.get("q"), flt, cap=10_001)
            lat.append((time.perf_counter() - t0) * 1000)
    return statistics.median(lat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "mediaidx-bench-api")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cat, cache = build(args.dir, args.assets)
    print(f"catalog of {args.assets} assets ready in {time.perf_counter() - t0:.1f} s ({cat})")
    proc, url = serve(cat, cache)
    try:
        with httpx.Client(base_url=url, timeout=30) as h:
            print(f"{'GET /api/assets, limit=100':32} {'median':>9} {'p90':>9} {'max':>9} {'SQL only':>9}  total")
            for name, params in QUERIES.items():
                q = {"limit": 100, **params}
                for _ in range(5):
                    r = h.get("/api/assets", params=q)
                    r.raise_for_status()
                lat = []
                for _ in range(args.calls):
                    t = time.perf_counter()
                    r = h.get("/api/assets", params=q)
                    r.raise_for_status()
                    lat.append((time.perf_counter() - t) * 1000)
                lat.sort()
                body = r.json()
                sql = in_process(cat, cache, params, max(20, args.calls // 4))
                print(f"{name:32} {statistics.median(lat):7.2f}ms {lat[int(len(lat) * 0.9)]:7.2f}ms "
                      f"{lat[-1]:7.2f}ms {sql:7.2f}ms  {body['total']}{'' if body['total_exact'] else '+'}"
                      f" ({len(body['results'])} rows, {len(r.content) // 1024} KiB)")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
