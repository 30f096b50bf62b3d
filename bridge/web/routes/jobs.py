"""Scan and workflow jobs: start (dry run unless told otherwise), list, follow live (server-sent events), cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from ...errors import NotFoundError, UsageError
from ...workflow import parse as parse_workflow
from ..deps import ctx
from ..jobs import job_events
from ..models import ErrorOut, JobOut, ScanIn, WorkflowIn

router = APIRouter(prefix="/api", tags=["jobs"])
JobId = Annotated[int, Path(ge=1, le=2**31, description="job id")]


def _job(request: Request, job_id: int) -> dict:
    found = ctx(request).jobs.lookup(job_id, full=True)
    if found is None:
        raise NotFoundError(f"no job {job_id}")
    return found[1]


FORBIDDEN = {403: {"model": ErrorOut, "description": "a root or path outside the catalog's roots and the folders "
                                                     "the service allows (`mediaidx serve --allow-root`)"}}


@router.post("/scans", status_code=202, response_model=JobOut, responses=FORBIDDEN,
             summary="Start a scan job (a dry run unless dry_run is false)")
def start_scan(request: Request, body: ScanIn) -> dict:
    c = ctx(request)
    roots = body.roots or c.roots()
    if not roots:
        raise UsageError("no root to scan: give the folders in 'roots'")
    for r in roots:
        if not r or "\0" in r or not (r.startswith("/") or "://" in r):
            raise UsageError(f"roots must be absolute folders, not {r!r}")
    c.root_policy().check_scan(roots, c.roots())  # 403 before anything starts, dry runs included
    opts = {"probe": body.probe, "thumbs": body.thumbs, "retry_failed": body.retry_failed, "dry_run": body.dry_run}
    return c.jobs.start_scan(roots, opts).public(full=True)


@router.post("/workflows", status_code=202, response_model=JobOut, responses=FORBIDDEN,
             summary="Run a JSON workflow as a job (a dry run unless dry_run is false)")
def start_workflow(request: Request, body: WorkflowIn) -> dict:
    c = ctx(request)
    # The whole workflow is checked now: a bad one is a 400, a path outside the allowed roots a 403, not a job.
    parse_workflow(body.workflow, c.root_policy().workflow_check(c.roots))
    return c.jobs.start_workflow(body.workflow, body.dry_run, c.root_policy()).public(full=True)


@router.get("/jobs", response_model=list[JobOut],
            summary="Recent jobs, web and bridge (ZeroMQ), newest first (without results)")
def list_jobs(request: Request) -> list[dict]:
    return ctx(request).jobs.all_public()


@router.get("/jobs/{job_id}", response_model=JobOut, summary="One job, with its result when finished")
def get_job(request: Request, job_id: JobId) -> dict:
    return _job(request, job_id)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut,
             summary="Ask a running job to stop (a bridge job through the bridge's own cancel)")
def cancel_job(request: Request, job_id: JobId) -> dict:
    job = ctx(request).jobs.cancel(job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    return job


@router.get("/jobs/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`progress` events (JSON job), then one `done` event with the result"}},
            summary="Follow a job live (server-sent events)")
async def job_stream(request: Request, job_id: JobId) -> StreamingResponse:
    _job(request, job_id)
    return StreamingResponse(job_events(ctx(request).jobs, job_id, request.is_disconnected),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
