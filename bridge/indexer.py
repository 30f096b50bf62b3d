"""The Python API. The CLI, the workflow runner and the services all go through ``MediaIndexer``.

    from bridge import MediaIndexer
    ix = MediaIndexer()            # the default per-user catalog, or MediaIndexer("/path/catalog.sqlite")
    ix.scan("/mnt/nas/footage")
    ix.get_recent(10)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import Catalog, usermeta
from .catalog import prune as prune_mod
from .catalog import search as search_mod
from .catalog.stats import library_stats
from .config import Settings
from .models import Asset, PlanItem, ScanSummary, Stats
from .scan import ProgressFn, Scanner, ScanOptions
from .scan.lock import ScanLock

if TYPE_CHECKING:
    from .workflow.spec import Step


@dataclass
class ChangeResult:
    """What a user-metadata command did (or, dry, would do)."""

    dry_run: bool
    plan: list[PlanItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "plan": [p.to_dict() for p in self.plan]}


class MediaIndexer:
    """A catalog and its thumbnail cache. Not thread-safe: give each thread its own instance."""

    def __init__(self, catalog: str | os.PathLike[str] | None = None, *,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.settings = Settings.resolve(catalog, cache_dir)
        self._db: Catalog | None = None

    # -- connections -----------------------------------------------------------------------------------
    @property
    def catalog_path(self) -> Path:
        return self.settings.catalog_path

    @property
    def thumbs_dir(self) -> Path:
        return self.settings.thumbs_dir

    def _write_db(self) -> Catalog:
        if self._db is None or self._db.readonly:
            if self._db is not None:
                self._db.close()
            self._db = Catalog(self.catalog_path)
        return self._db

    def _read_db(self) -> Catalog:
        """Reads never create a catalog: before the first scan they see an empty one."""
        if self._db is None:
            self._db = Catalog(self.catalog_path, readonly=not self.catalog_path.exists())
        elif self._db.readonly and self.catalog_path.exists():
            self._db.close()
            self._db = Catalog(self.catalog_path)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> MediaIndexer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scanning --------------------------------------------------------------------------------------
    def scan(self, *roots: str | os.PathLike[str], probe: bool = True, thumbs: bool = False,
             dry_run: bool = False, follow_symlinks: bool = False, retry_failed: bool = False,
             allow_empty: bool = False, jobs: int | None = None, thumb_size: int = 320,
             thumb_format: str = "jpeg", progress: ProgressFn | None = None,
             cancel: threading.Event | None = None, analyze: bool = False) -> ScanSummary:
        """Sync the catalog with ``roots`` (every known root when none is given).

        ``analyze`` also finds shots, key frames and a hero image of new and changed video clips.

        ``dry_run`` returns the exact plan in ``summary.plan`` and changes nothing, not even the
        catalog file's bytes or the thumbnail cache.
        """
        if len(roots) == 1 and isinstance(roots[0], list | tuple):
            roots = tuple(roots[0])
        if not roots:
            roots = tuple(r["url"] for r in self.roots())
            if not roots:
                from .errors import UsageError

                raise UsageError("no root to scan: give a folder (mediaidx scan /path/to/media)")
        opts = ScanOptions(probe=probe, thumbs=thumbs, dry_run=dry_run, follow_symlinks=follow_symlinks,
                           retry_failed=retry_failed, allow_empty=allow_empty, jobs=jobs,
                           thumb_size=thumb_size, thumb_format=thumb_format, analyze=analyze)
        if dry_run:
            with Catalog(self.catalog_path, readonly=True) as db:
                return Scanner(db, self.thumbs_dir, opts, progress, cancel).scan(roots)
        return Scanner(self._write_db(), self.thumbs_dir, opts, progress, cancel).scan(roots)

    def roots(self) -> list[dict[str, Any]]:
        return [{"url": u, "last_scan_at": t} for u, t in self._read_db().conn.execute(
            "SELECT url, last_scan_at FROM roots ORDER BY url")]

    def prune(self, *, dry_run: bool = False, older_than_days: float | None = None) -> list[PlanItem]:
        """Delete missing assets (and thumbnails nothing uses). Returns what was, or would be, deleted."""
        if dry_run:
            with Catalog(self.catalog_path, readonly=True) as db:
                return prune_mod.plan_prune(db.conn, self.thumbs_dir, older_than_days)
        db = self._write_db()
        with ScanLock(self.catalog_path):
            plan = prune_mod.plan_prune(db.conn, self.thumbs_dir, older_than_days)
            prune_mod.apply_prune(db.conn, plan)
        return plan

    def forget_root(self, root: str | os.PathLike[str], *, dry_run: bool = False,
                    drop_user_data: bool = False) -> list[PlanItem]:
        """Remove a root from the catalog (its assets, analyses and the thumbnails only they used; the files
        are not touched). Refused when its assets carry ratings, tags or notes unless ``drop_user_data``.
        Returns what was, or would be, removed."""
        from .catalog import forget

        if dry_run:
            with Catalog(self.catalog_path, readonly=True) as db:
                return forget.plan_forget(db.conn, self.thumbs_dir, root, drop_user_data=True)
        db = self._write_db()
        with ScanLock(self.catalog_path):
            plan = forget.plan_forget(db.conn, self.thumbs_dir, root, drop_user_data)
            forget.apply_forget(db.conn, plan)
        return plan

    # -- queries ---------------------------------------------------------------------------------------
    def search(self, query: str | None = None, **filters: Any) -> list[Asset]:
        """Full-text search plus filters (see ``bridge.catalog.search.SearchFilters``)."""
        flt = search_mod.SearchFilters.from_kwargs(**filters)
        return search_mod.search(self._read_db().conn, query, flt, self.thumbs_dir)

    def count(self, query: str | None = None, **filters: Any) -> int:
        flt = search_mod.SearchFilters.from_kwargs(**filters)
        return search_mod.count(self._read_db().conn, query, flt)

    def get_recent(self, n: int = 20, kind: str | None = None) -> list[Asset]:
        """The most recently added assets, newest first."""
        return search_mod.recent(self._read_db().conn, n, self.thumbs_dir, kind)

    def get(self, ref: str | int) -> Asset:
        """One asset with its full probe, by id or by path."""
        conn = self._read_db().conn
        return search_mod.get_asset(conn, search_mod.resolve(conn, ref), self.thumbs_dir)

    def stats(self) -> Stats:
        return library_stats(self._read_db().conn)

    def probe(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Probe one file directly (catalog untouched); a remote URL (s3://, smb://, sftp://) is probed by
        ranged reads."""
        from .probe import probe_file
        from .storage import is_remote

        if isinstance(path, str) and is_remote(path):
            from .storage.remote import probe_url

            return probe_url(path)
        return probe_file(os.fspath(path))

    def native_path(self, ref: str | int) -> str | bytes:
        """A path the OS can open for an asset (bytes when its name is not valid UTF-8)."""
        conn = self._read_db().conn
        url, rel = search_mod.native_path(conn, search_mod.resolve(conn, ref))
        full = os.fsencode(url).rstrip(b"/") + b"/" + rel
        try:
            return full.decode("utf-8")
        except UnicodeDecodeError:
            return full

    # -- video analysis (bridge/analysis) --------------------------------------------------------------
    def analyze(self, ref: str | int, *, dry_run: bool = False) -> dict[str, Any]:
        """Find a catalogued clip's shots, key frames and hero image and store them (dry: the plan only)."""
        from .analysis.store import analyze_asset

        return analyze_asset(self, ref, dry_run=dry_run)

    def pending_analysis(self, root: str | None = None) -> list[int]:
        """Ids of present videos not yet analysed from their current content (all roots, or one root: a root
        the catalog does not have is an error, not an empty list)."""
        from .analysis.store import pending_assets
        from .catalog.forget import resolve_root

        conn = self._read_db().conn
        return pending_assets(conn, resolve_root(conn, root)[1] if root else None)

    def shots(self, ref: str | int) -> list[dict[str, Any]]:
        """The stored shots of an asset, each with its key frame and scores ([] before analysis)."""
        from .analysis.store import load_shots

        conn = self._read_db().conn
        return load_shots(conn, search_mod.resolve(conn, ref))

    def hero_image(self, ref: str | int) -> Path | None:
        """The asset's hero JPEG in the thumbnail cache, or None when it has none (yet)."""
        from .analysis.store import hero_file

        conn = self._read_db().conn
        return hero_file(conn, search_mod.resolve(conn, ref), self.thumbs_dir)

    # -- user metadata ---------------------------------------------------------------------------------
    def tag(self, ref: str | int, tags: Iterable[str], *, remove: bool = False, dry_run: bool = False
            ) -> ChangeResult:
        """Add (or remove) tags; the plan lists only tags that really change, each under the spelling the
        catalog keeps (tags are case-insensitive and the first spelling stored wins, so ``ÉTÉ`` on an asset
        when ``été`` exists elsewhere plans and stores ``été``; a tag the asset has in any case is no change).
        A dry run and the real run compute the plan with the same code (usermeta.plan_*_tags)."""
        tags = usermeta.clean_tags(tags)
        db = self._db_for(dry_run)
        asset_id = search_mod.resolve(db.conn, ref)
        label = self._label(db.conn, asset_id)
        if dry_run:
            planned = [t for t, _ in (usermeta.plan_remove_tags if remove else usermeta.plan_add_tags)(
                db.conn, asset_id, tags)]
        else:  # planned inside the transaction, so the reported plan is what was written
            with db.transaction() as conn:
                planned = (usermeta.remove_tags if remove else usermeta.add_tags)(conn, asset_id, tags)
        plan = [PlanItem("untag" if remove else "tag", label, asset_id, reason=t) for t in planned]
        return self._done(db, dry_run, plan)

    def rate(self, ref: str | int, rating: int | None, *, dry_run: bool = False) -> ChangeResult:
        """Set a 0-5 rating (None clears it)."""
        if rating is not None and not 0 <= rating <= 5:
            from .errors import UsageError

            raise UsageError(f"rating must be 0 to 5, not {rating}")
        db = self._db_for(dry_run)
        asset_id = search_mod.resolve(db.conn, ref)
        old = db.conn.execute("SELECT rating FROM assets WHERE id = ?", (asset_id,)).fetchone()[0]
        plan = [] if old == rating else [PlanItem(
            "rate", self._label(db.conn, asset_id), asset_id,
            reason=f"{'none' if old is None else old} -> {'none' if rating is None else rating}")]
        if plan and not dry_run:
            with db.transaction() as conn:
                usermeta.set_rating(conn, asset_id, rating)
        return self._done(db, dry_run, plan)

    def note(self, ref: str | int, text: str | None, *, dry_run: bool = False) -> ChangeResult:
        """Replace the asset's note (None or "" clears it)."""
        if text:
            usermeta.check_text(text, "note")
        db = self._db_for(dry_run)
        asset_id = search_mod.resolve(db.conn, ref)
        old = db.conn.execute("SELECT note FROM assets WHERE id = ?", (asset_id,)).fetchone()[0]
        plan = [] if (old or None) == (text or None) else [
            PlanItem("note", self._label(db.conn, asset_id), asset_id, reason=text or "(cleared)")]
        if plan and not dry_run:
            with db.transaction() as conn:
                usermeta.set_note(conn, asset_id, text)
        return self._done(db, dry_run, plan)

    def _db_for(self, dry_run: bool) -> Catalog:
        return Catalog(self.catalog_path, readonly=True) if dry_run else self._write_db()

    @staticmethod
    def _done(db: Catalog, dry_run: bool, plan: list[PlanItem]) -> ChangeResult:
        if dry_run:
            db.close()
        return ChangeResult(dry_run, plan)

    @staticmethod
    def _label(conn: Any, asset_id: int) -> str:
        url, rel = search_mod.native_path(conn, asset_id)
        return f"{url.rstrip('/')}/{rel.decode('utf-8', 'backslashreplace')}"

    # -- workflows -------------------------------------------------------------------------------------
    def run_workflow(self, spec: dict[str, Any] | list[Any], *, dry_run: bool = False,
                     progress: ProgressFn | None = None, check: Callable[[list[Step]], None] | None = None
                     ) -> list[dict[str, Any]]:
        """Run a JSON workflow (one step or {"workflow": [...]}); validated completely before anything runs.
        ``check(steps)`` may refuse it before any step runs (the services' root policy); None: no limits."""
        from .workflow import run_workflow

        return run_workflow(self, spec, dry_run=dry_run, progress=progress, check=check)
