"""Schemathesis against the OpenAPI document: generated requests to every operation find no server error.

Jobs are swapped for instant fakes here (a fuzzer must not scan "/" or copy files around), so what is
fuzzed on those operations is their validation; the real jobs are tested in test_api.py. The bridge is a
real BridgeServer object that is not started (no session connected)."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from bridge.service import BridgeServer
from bridge.web import WebContext, create_app
from bridge.web.jobs import WebJob

HOST = "127.0.0.1:8765"



def _fake_jobs(ctx: WebContext) -> None:
    jobs = ctx.jobs

    def start(kind: str, params: dict[str, Any]) -> WebJob:
        with jobs._lock:
            job = jobs._new(kind, params)
        job.state, job.result, job.finished_at = "done", {"fake": True}, job.started_at
        return job

    jobs.start_scan = lambda roots, opts: start("scan", {"roots": roots, **opts})  # type: ignore[method-assign]
    jobs.start_workflow = lambda spec, dry_run, policy=None: start(  # type: ignore[method-assign]
        "workflow", {"dry_run": dry_run})


def test_no_server_error(catalog) -> None:
    """Every operation, up to 20 valid and 20 invalid generated requests each (bounded: well under a minute)."""
    _lib, cat, cache = catalog
    bridge = BridgeServer(cat, cache_dir=cache, bind="tcp://127.0.0.1:0")  # not started: no session connected
    ctx = WebContext(cat, cache, bridge=bridge)
    _fake_jobs(ctx)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(ctx), headers={"Host": HOST})
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for op, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
        @settings(max_examples=20, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            response = case.call_and_validate(base_url=f"http://{HOST}", checks=[not_a_server_error])
            statuses[response.status_code] += 1

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, op  # nothing invalid to send to an operation without input
    # the requests reached the handlers (not only the loopback check): plenty of them succeeded
    assert sum(n for s, n in statuses.items() if 200 <= s < 300) > 30, statuses
    assert not any(s >= 500 for s in statuses), statuses
