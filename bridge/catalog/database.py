"""Opening the catalog: WAL, foreign keys, migrations, read-only snapshots for dry runs."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from ..errors import CatalogError
from .migrations import SCHEMA_VERSION, pending


def schema_sql() -> str:
    return resources.files("bridge").joinpath("schema.sql").read_text(encoding="utf-8")


class Catalog:
    """One SQLite connection to the catalog.

    ``readonly=True`` is for dry runs: the catalog file is opened read-only (or, when it does not exist
    yet, an empty in-memory catalog stands in), so a dry run cannot change a byte of it. Temporary tables
    still work there; scans keep their bookkeeping in them.
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.conn = self._connect()

    # -- opening -----------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            return self._connect_readonly()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            _configure(conn)
            conn.execute("PRAGMA journal_mode = WAL")
            self._migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{self.path}: not a usable catalog ({exc})") from None
        return conn

    def _connect_readonly(self) -> sqlite3.Connection:
        if not self.path.exists():
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            _configure(conn)
            conn.executescript(schema_sql())
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return conn
        uri = f"file:{quote(str(self.path.absolute()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30, check_same_thread=False)
            _configure(conn)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{self.path}: not a usable catalog ({exc})") from None
        if version == SCHEMA_VERSION:
            return conn
        _check_version(self.path, version)
        # An older catalog: plan against a migrated private copy, never the original.
        conn = self._private_copy(conn)
        self._migrate(conn)
        return conn

    def _private_copy(self, src: sqlite3.Connection) -> sqlite3.Connection:
        """A writable copy of what ``src`` reads, in a temporary folder that close() removes (``src`` is
        closed): dry runs that must change something to plan on it do so there, never in the file."""
        self._tmpdir = tempfile.TemporaryDirectory(prefix="mediaidx-dry-")
        copy = Path(self._tmpdir.name) / self.path.name
        with contextlib.closing(sqlite3.connect(copy)) as dst:
            src.backup(dst)
        src.close()
        conn = sqlite3.connect(copy, isolation_level=None, check_same_thread=False)
        _configure(conn)
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        _check_version(self.path, version)
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
                for statement in _statements(schema_sql()):
                    conn.execute(statement)
            else:
                for _, step in pending(version):
                    step(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- transactions ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (so a killed scan never leaves half rows)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def use_private_copy(self) -> None:
        """From now on work on a private temporary copy (a dry run that plans on top of a change it may not
        make, such as a scan adopting a root); the catalog file is never written. Read-only catalogs only."""
        if not self.readonly or self._tmpdir is not None:
            return  # writable, or already a copy (an older catalog migrated for the dry run)
        self.conn = self._private_copy(self.conn)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA temp_store = FILE")  # scan bookkeeping can outgrow memory on huge trees
    conn.execute("PRAGMA cache_size = -32000")
    # Tags compare case-insensitively in every script ("Été" = "été", "Straße" = "STRASSE"); the schema's
    # COLLATE NOCASE folds ASCII only. Used on the (small) tags table, never in an index.
    conn.create_function("casefold", 1, _casefold, deterministic=True)


def _casefold(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


def _check_version(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise CatalogError(
            f"{path}: written by a newer mediaidx (catalog schema {version}, this one knows {SCHEMA_VERSION}); "
            "upgrade mediaidx")


def _statements(script: str) -> Iterator[str]:
    """Split a schema script into statements (sqlite3.complete_statement knows where each ends)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        if not buf and line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf.strip()
            buf = ""
    if buf.strip():
        yield buf.strip()


def copy_catalog(src: Path, dest: Path) -> None:
    """A consistent copy of a live catalog (SQLite online backup, WAL included)."""
    with contextlib.closing(sqlite3.connect(src)) as s, contextlib.closing(sqlite3.connect(dest)) as d:
        s.backup(d)
