"""Scan and workflow jobs started from the web: one thread each with its own MediaIndexer, progress kept
on the job (read by `GET /api/jobs` and streamed as server-sent events), cancel through an Event.

Inside `mediaidx serve` the ZeroMQ bridge's own jobs (scans started from Blender or the CLI) are listed,
followed and cancelled here too, through `BridgeServer`'s thread-safe job API; both share one id space."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MediaIdxError
from ..indexer import MediaIndexer
from ..scan import ScanEvent

if TYPE_CHECKING:
    from ..service.rootpolicy import RootPolicy
    from ..service.server import BridgeServer

log = logging.getLogger(__name__)

PLAN_LIMIT = 500          # a dry run's plan can list 100,000 files: the job keeps the first ones
KEEP_FINISHED = 50        # finished jobs remembered for the dashboard
EVENT_INTERVAL_S = 0.1    # server-sent events: at most ten progress updates a second


class Busy(MediaIdxError):
    """A scan is already running (HTTP 409); ``job`` is its id."""

    def __init__(self, message: str, job: int | None = None) -> None:
        super().__init__(message)
        self.job = job


@dataclass
class WebJob:
    id: int
    kind: str                         # scan | workflow
    params: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "running"            # running | done | cancelled | incomplete | failed
    progress: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    version: int = 0

    def public(self, *, full: bool = False) -> dict[str, Any]:
        d = {"id": self.id, "kind": self.kind, "state": self.state, "params": self.params,
             "progress": dict(self.progress), "error": self.error, "started_at": self.started_at,
             "finished_at": self.finished_at, "cancelling": self.state == "running" and self.cancel.is_set(),
             "origin": "web", "session": None}
        if full:
            d["result"] = self.result
        return d


def bridge_public(snap: dict[str, Any], *, full: bool = False) -> dict[str, Any]:
    """A bridge job's snapshot (`Job.snapshot`) in the shape of `WebJob.public`, origin "bridge"."""
    d = {"id": snap["id"], "kind": snap["kind"], "state": snap["state"],
         "params": {"roots": snap["roots"], **snap["options"]}, "progress": snap["progress"],
         "error": snap["error"], "started_at": snap["started_at"], "finished_at": snap["finished_at"],
         "cancelling": snap["cancelling"], "origin": "bridge", "session": snap["session"]}
    if full:
        summary = snap["summary"]
        if isinstance(summary, dict) and isinstance(summary.get("plan"), list):
            summary = {**summary, "plan_count": len(summary["plan"]), "plan": summary["plan"][:PLAN_LIMIT]}
        d["result"] = summary
    return d


def describe(job: dict[str, Any]) -> str:
    """How a 409 names the running job: id, where it came from, what it scans."""
    origin = "web" if job["origin"] == "web" else f"bridge, session {job['session'] or '(no name)'}"
    roots = ", ".join(job["params"].get("roots") or []) or "all roots"
    return f"scan job {job['id']} ({origin}) on {roots}"


class JobManager:
    """Starts and tracks web jobs, and shows the bridge's. Thread-safe: request threads read, job threads write."""

    def __init__(self, catalog: Path, cache_dir: Path, bridge: BridgeServer | None = None) -> None:
        self.catalog = catalog
        self.cache_dir = cache_dir
        self.bridge = bridge
        self._jobs: dict[int, WebJob] = {}
        self._next = 1
        self._lock = threading.Lock()
        self.closing = threading.Event()
        if bridge is not None:  # a ZeroMQ scan is refused while a web scan runs, naming it
            bridge.external_scan = self._running_web_scan

    def list(self) -> list[WebJob]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: -j.id)

    def get(self, job_id: int) -> WebJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all_public(self) -> list[dict[str, Any]]:
        """Every job of the process, web and bridge, newest first (without results)."""
        out = [j.public() for j in self.list()]
        if self.bridge is not None:
            out += [bridge_public(s) for s in self.bridge.job_snapshots()]
        return sorted(out, key=lambda d: (-d["started_at"], -d["id"]))

    def lookup(self, job_id: int, *, full: bool = False) -> tuple[int, dict[str, Any]] | None:
        """(version, public dict) of a web or bridge job, or None: what `GET /api/jobs/{id}` and the event
        stream poll."""
        job = self.get(job_id)
        if job is not None:
            version = job.version
            return version, job.public(full=full)
        snap = self.bridge.job_snapshot(job_id) if self.bridge is not None else None
        return (snap["version"], bridge_public(snap, full=full)) if snap is not None else None

    def cancel(self, job_id: int) -> dict[str, Any] | None:
        """Ask a job to stop; a bridge job through the bridge loop's `cancel` path."""
        job = self.get(job_id)
        if job is not None:
            if job.state == "running":
                job.cancel.set()
                job.version += 1
            return job.public()
        if self.bridge is None or self.bridge.job_snapshot(job_id) is None:
            return None
        self.bridge.cancel_job(job_id)
        found = self.lookup(job_id)
        return found[1] if found is not None else None

    def _running_web_scan(self) -> str | None:
        with self._lock:
            job = next((j for j in self._jobs.values() if j.kind == "scan" and j.state == "running"), None)
        return describe(job.public()) if job is not None else None

    def close(self) -> None:
        """Cancel what runs (the process is stopping); scans stop at their next checkpoint."""
        self.closing.set()
        for job in self.list():
            job.cancel.set()

    # -- starting -------------------------------------------------------------------------------------------
    def start_scan(self, roots: list[str], opts: dict[str, Any]) -> WebJob:
        with self._lock:
            running = next((j.public() for j in self._jobs.values() if j.kind == "scan" and j.state == "running"),
                           None)
            if running is None and self.bridge is not None and (snap := self.bridge.running_scan()) is not None:
                running = bridge_public(snap)
            if running is not None:
                raise Busy(f"{describe(running)} is already running; cancel it or wait for it to finish",
                           job=running["id"])
            job = self._new("scan", {"roots": roots, **opts})

        def work(ix: MediaIndexer, progress: Callable[[ScanEvent], None]) -> str:
            summary = ix.scan(*roots, progress=progress, cancel=job.cancel, **opts)
            d = summary.to_dict()
            d["plan_count"] = len(d["plan"])
            d["plan"] = d["plan"][:PLAN_LIMIT]
            d["issues"] = d["issues"][:PLAN_LIMIT]
            job.result = d
            return "done" if summary.complete else "cancelled" if job.cancel.is_set() else "incomplete"

        self._run(job, work)
        return job

    def start_workflow(self, spec: Any, dry_run: bool, policy: RootPolicy | None = None) -> WebJob:
        """``policy`` is checked again on the job's thread, against the roots of that moment, before any step
        runs (the route checked it already, to answer 403)."""
        with self._lock:
            job = self._new("workflow", {"dry_run": dry_run})

        def work(ix: MediaIndexer, progress: Callable[[ScanEvent], None]) -> str:
            check = policy.workflow_check(lambda: [r["url"] for r in ix.roots()]) if policy is not None else None
            steps = ix.run_workflow(spec, dry_run=dry_run, progress=progress, check=check)
            for step in steps:
                res = step.get("result")
                if isinstance(res, dict) and isinstance(res.get("plan"), list):
                    res["plan_count"] = len(res["plan"])
                    res["plan"] = res["plan"][:PLAN_LIMIT]
            job.result = {"dry_run": dry_run, "steps": steps}
            return "done" if all(s.get("status") == "ok" for s in steps) else "incomplete"

        self._run(job, work)
        return job

    def _new(self, kind: str, params: dict[str, Any]) -> WebJob:
        if self.bridge is not None:  # one id space with the bridge's jobs
            job = WebJob(self.bridge.new_job_id(), kind, params)
        else:
            job = WebJob(self._next, kind, params)
            self._next += 1
        self._jobs[job.id] = job
        finished = [j for j in self._jobs.values() if j.state != "running"]
        for old in sorted(finished, key=lambda j: j.id)[:-KEEP_FINISHED] if len(finished) > KEEP_FINISHED else []:
            del self._jobs[old.id]
        return job

    def _run(self, job: WebJob, work: Callable[[MediaIndexer, Callable[[ScanEvent], None]], str]) -> None:
        def progress(ev: ScanEvent) -> None:
            job.progress = {"phase": ev.phase, "root": ev.root, "folders": ev.folders, "files": ev.files,
                            "work_done": ev.work_done, "work_total": ev.work_total}
            job.version += 1

        def run() -> None:
            try:
                with MediaIndexer(self.catalog, cache_dir=self.cache_dir) as ix:
                    state = work(ix, progress)
            except MediaIdxError as exc:
                state, job.error = "failed", str(exc)
            except Exception as exc:  # a bug: the job says so, the service goes on
                log.exception("%s job %s failed", job.kind, job.id)
                state, job.error = "failed", f"internal error ({type(exc).__name__})"
            job.finished_at = time.time()
            job.state = state
            job.version += 1

        threading.Thread(target=run, name=f"mediaidx-web-{job.kind}-{job.id}", daemon=True).start()


async def job_events(jobs: JobManager, job_id: int, is_disconnected: Callable[[], Any]) -> AsyncIterator[str]:
    """Server-sent events for one job, web or bridge: ``progress`` on change (at most ten a second), then one
    ``done``. Polls `JobManager.lookup`, so the job threads never wait on a slow reader."""
    seen = -1
    last_beat = time.monotonic()
    while not jobs.closing.is_set():
        if await is_disconnected():
            return
        found = jobs.lookup(job_id, full=True)
        if found is None:  # a bridge job forgotten (an hour after it ended)
            return
        version, public = found
        finished = public["state"] != "running"
        if version != seen or finished:  # the state too: a version bump lost between threads must not hang us
            seen = version
            if not finished:
                public.pop("result", None)
            yield _sse("done" if finished else "progress", public)
            if finished:
                return
            last_beat = time.monotonic()
        elif time.monotonic() - last_beat > 15:
            last_beat = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(EVENT_INTERVAL_S)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"
