"""The catalog file: versioned schema, clear refusal of what it cannot use, readers during scans."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bridge import MediaIndexer, synth
from bridge.catalog import SCHEMA_VERSION, Catalog
from bridge.errors import CatalogError


def test_new_catalog_has_the_current_schema(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as db:
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"roots", "folders", "assets", "tags", "asset_tags", "backups", "scans", "asset_fts"} <= tables
        assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_catalog_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    Catalog(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(CatalogError, match="newer mediaidx"):
            Catalog(path, readonly=readonly)
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_catalog_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CatalogError, match="not a usable catalog"):
        Catalog(path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_readers_see_a_consistent_catalog_while_a_scan_writes(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    for i in range(40):
        (root / f"r{i // 10}").mkdir(parents=True, exist_ok=True)
        synth.make_image(root / f"r{i // 10}" / f"img{i:02d}.png", width=16 + i, height=16)
    cat = tmp_path / "c.sqlite"
    MediaIndexer(cat).scan(root, probe=False)  # create it
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            with MediaIndexer(cat) as ix:
                while not done.is_set():
                    seen.append(ix.count())  # one query: one consistent snapshot
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    try:
        with MediaIndexer(cat) as ix:
            s = ix.scan(root, jobs=1)  # probes all 40 (they were unprobed)
    finally:
        done.set()
        t.join()
    assert not errors and seen and all(n == 40 for n in seen)
    assert s.unchanged == 40


def test_python_api_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`MediaIndexer()` with no arguments uses the per-user catalog; reads never create it."""
    monkeypatch.delenv("MEDIAIDX_CATALOG", raising=False)
    monkeypatch.delenv("MEDIAIDX_CACHE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    synth.make_video(tmp_path / "clip.mp4", frames=3, width=32, height=32)
    ix = MediaIndexer()
    assert ix.get_recent() == [] and ix.stats().assets == 0
    assert not ix.catalog_path.exists()
    summary = ix.scan(tmp_path)
    assert summary.added == 1
    assert ix.catalog_path == tmp_path / "data" / "mediaidx" / "catalog.sqlite"
    (recent,) = ix.get_recent(5)
    assert recent.name == "clip.mp4" and recent.kind == "video" and recent.fps == "25/1"
    assert type(recent).__name__ == "Asset" and recent.to_dict()["name"] == "clip.mp4"
    ix.close()
