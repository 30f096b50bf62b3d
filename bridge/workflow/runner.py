"""Running a validated workflow: each action is one function over the same MediaIndexer API."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..catalog import Catalog
from ..catalog.search import SearchFilters, native_path, where_clause
from ..errors import MediaIdxError
from ..models import PlanItem
from ..scan import ProgressFn, ScanEvent
from .spec import FILTER_FIELDS, Step, parse

if TYPE_CHECKING:
    from ..indexer import MediaIndexer


def _filters(params: dict[str, Any]) -> tuple[str | None, SearchFilters]:
    kw = {k: v for k, v in params.items() if k in FILTER_FIELDS and k != "query"}
    if isinstance(kw.get("tags"), str):
        kw["tags"] = [kw["tags"]]
    return params.get("query"), SearchFilters(**kw)


def _progress_adapter(progress: ProgressFn | None, label: str) -> Callable[[int, int, str], None] | None:
    if progress is None:
        return None
    return lambda done, total, path: progress(
        ScanEvent("work", label, files=done, work_done=done, work_total=total, path=path))


def _scan(ix: MediaIndexer, step: Step, dry: bool, progress: ProgressFn | None) -> dict[str, Any]:
    p = step.params
    roots = p["root"] if isinstance(p["root"], list) else [p["root"]]
    summary = ix.scan(*roots, probe=p.get("probe", True), thumbs=p.get("thumbs", False), dry_run=dry,
                      follow_symlinks=p.get("follow_symlinks", False), retry_failed=p.get("retry_failed", False),
                      allow_empty=p.get("allow_empty", False), jobs=p.get("jobs"), progress=progress)
    result = summary.to_dict()
    if not summary.complete:
        raise StepFailed("scan incomplete: " + "; ".join(f"{i.path}: {i.reason}" for i in summary.issues[:3]),
                         result)
    return result


def _stats(ix: MediaIndexer, step: Step, dry: bool, progress: ProgressFn | None) -> dict[str, Any]:
    return ix.stats().to_dict()


def _backup(ix: MediaIndexer, step: Step, dry: bool, progress: ProgressFn | None) -> dict[str, Any]:
    from ..library.backup import backup

    query, flt = _filters(step.params)
    db = Catalog(ix.catalog_path, readonly=dry)
    try:
        report = backup(db, step.params["backup_root"], query=query, filters=flt, dry_run=dry,
                        create_root=step.params.get("create_root", False),
                        progress=_progress_adapter(progress, "backup"))
    finally:
        db.close()
    result = report.to_dict()
    if report.conflicts or report.failed:
        raise StepFailed(f"{report.conflicts} conflict(s) and {report.failed} failure(s); nothing was overwritten",
                         result)
    return result


def _sync_album(ix: MediaIndexer, step: Step, dry: bool, progress: ProgressFn | None) -> dict[str, Any]:
    from ..library.album import AlbumFile, capture_time, files_in_folder, sync_album

    p = step.params
    unread: list[PlanItem] = []
    if "source" in p:
        files = files_in_folder(p["source"], unread)
    else:
        query, flt = _filters({k: v for k, v in p.items() if k != "root"})  # here root is the destination
        db = Catalog(ix.catalog_path, readonly=True)
        try:
            if p.get("assets"):
                ids = [int(a) for a in p["assets"]]
            else:
                # every match, not one search page: an album of 25,000 photos must get all of them
                source, where, params = where_clause(query, flt)
                ids = [i for (i,) in db.conn.execute(f"SELECT a.id{source}{where} ORDER BY a.id", params)]
            files = []
            for asset_id in ids:
                url, rel = native_path(db.conn, asset_id)
                path = os.fsdecode(os.fsencode(url).rstrip(b"/") + b"/" + rel)
                when, camera = capture_time(path)
                files.append(AlbumFile(path, when, camera))
        finally:
            db.close()
    report = sync_album(files, p["root"], p["category"], mode=p.get("mode", "copy"),
                        pattern=p.get("pattern", "{date:%Y-%m-%d_%H%M%S}"), dry_run=dry,
                        progress=_progress_adapter(progress, "sync_album"))
    report.plan.extend(unread)  # subfolders never listed: the step must not look complete
    report.failed += len(unread)
    result = report.to_dict()
    if report.failed:
        raise StepFailed(f"{report.failed} file(s) could not be placed", result)
    return result


ACTIONS: dict[str, Callable[[MediaIndexer, Step, bool, ProgressFn | None], dict[str, Any]]] = {
    "scan": _scan, "stats": _stats, "backup": _backup, "sync_album": _sync_album,
}


class StepFailed(MediaIdxError):
    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


def run_workflow(ix: MediaIndexer, spec: Any, *, dry_run: bool = False, progress: ProgressFn | None = None,
                 check: Callable[[list[Step]], None] | None = None) -> list[dict[str, Any]]:
    """Validate everything, then run the steps in order; a failed step stops the rest unless
    ``continue_on_error``. Each result: step, action, status (ok | failed | skipped), result, error.
    ``check`` (see ``spec.parse``) may refuse the whole workflow before any step runs."""
    steps, keep_going = parse(spec, check)
    results: list[dict[str, Any]] = []
    stopped = False
    for step in steps:
        entry: dict[str, Any] = {"step": step.index, "action": step.action, "name": step.name,
                                 "dry_run": dry_run or step.dry_run}
        if stopped:
            results.append({**entry, "status": "skipped", "error": "an earlier step failed"})
            continue
        started = time.monotonic()
        try:
            entry["result"] = ACTIONS[step.action](ix, step, dry_run or step.dry_run, progress)
            entry["status"] = "ok"
        except StepFailed as exc:
            entry.update(status="failed", error=f"{step.label}: {exc}", result=exc.result)
        except MediaIdxError as exc:
            entry.update(status="failed", error=f"{step.label}: {exc}")
        entry["elapsed"] = round(time.monotonic() - started, 3)
        results.append(entry)
        if entry["status"] == "failed" and not keep_going:
            stopped = True
    return results
