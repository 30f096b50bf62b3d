"""The web API and the ZeroMQ bridge in one `mediaidx serve` process: the dashboard sees the bridge's own
Blender sessions and pushes shots to them."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from blender_mediaidx.core import protocol as P
from blender_mediaidx.core.client import BridgeClient
from bridge import MediaIndexer, synth
from bridge.service.server import BridgeServer
from bridge.web import WebContext, create_app

from .conftest import wait_job


def test_sessions_and_push_reach_the_bridge(catalog, serve) -> None:
    _lib, cat, cache = catalog
    p = serve(cat, cache)
    blender = BridgeClient(p.endpoint, name="comp-station", heartbeat_s=0.2, dead_after_s=2.0).start()
    try:
        assert blender.wait(lambda: blender.state == "connected", 10), blender.last_error
        shots: list[dict] = []
        blender.on("shots", lambda data, msg: shots.append(data))
        with p.http() as h:
            listed = h.get("/api/sessions").json()
            assert listed["bridge"] is True and [s["name"] for s in listed["sessions"]] == ["comp-station"]
            asset = next(a for a in h.get("/api/assets", params={"kind": "video"}).json()["results"])
            r = h.post("/api/sessions/comp-station/push", json={"assets": [asset["id"]], "mode": "camera-bg"})
            assert r.status_code == 200 and r.json() == {"delivered": 1, "to": "comp-station"}
            assert blender.wait(lambda: shots, 10)
            shot = shots[0]["shots"][0]
            assert shots[0]["from"] == "web" and shot["mode"] == "camera-bg"
            assert shot["asset"]["id"] == asset["id"] and shot["asset"]["probe"]["streams"]
            assert shot["asset"]["path"] == asset["path"]
            missing = h.post("/api/sessions/nobody/push", json={"assets": [asset["id"]]})
            assert missing.status_code == 404 and "comp-station" in missing.json()["error"]["message"]
            assert h.post("/api/sessions/comp-station/push", json={"assets": [987654]}).status_code == 404
    finally:
        blender.stop()


def _sse(text: str) -> list[tuple[str, dict]]:
    """(event, data) pairs of a server-sent event stream."""
    out = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_a_zeromq_scan_shows_on_the_web_and_streams_to_done(catalog, serve, tmp_path: Path) -> None:
    _lib, cat, cache = catalog
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for i in range(12):
        synth.make_image(incoming / f"still_{i:02d}.png", width=16 + i, height=16)
    p = serve(cat, cache, ["--allow-root", str(tmp_path)])
    blender = BridgeClient(p.endpoint, name="comp-station", heartbeat_s=0.2, dead_after_s=2.0).start()
    try:
        assert blender.wait(lambda: blender.state == "connected", 10), blender.last_error
        done: list[dict] = []
        blender.on("job.done", lambda data, msg: done.append(data))
        job_id = blender.call("scan", {"roots": [str(incoming)], "thumbs": False})["job"]
        with p.http() as h:
            listed = {j["id"]: j for j in h.get("/api/jobs").json()}
            job = listed[job_id]
            assert job["origin"] == "bridge" and job["session"] == "comp-station" and job["kind"] == "scan"
            assert job["params"]["roots"] == [str(incoming)] and job["params"]["thumbs"] is False
            with h.stream("GET", f"/api/jobs/{job_id}/events") as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                events = _sse(r.read().decode())
            assert events and events[-1][0] == "done"
            assert all(e == "progress" and d["state"] == "running" for e, d in events[:-1])
            final = events[-1][1]
            assert final["id"] == job_id and final["state"] == "done" and final["origin"] == "bridge"
            assert final["result"]["added"] == 12 and final["finished_at"] >= final["started_at"]
            shown = h.get(f"/api/jobs/{job_id}").json()
            assert shown["state"] == "done" and shown["result"]["added"] == 12 and shown["progress"]["phase"] == "done"
            assert blender.wait(lambda: done, 10) and done[0]["state"] == "done"  # the client still hears it
            # One id space: a web job never takes a bridge job's number, and both are listed.
            web = h.post("/api/scans", json={"roots": [str(incoming)]})
            assert web.status_code == 202 and web.json()["id"] != job_id and web.json()["origin"] == "web"
            wait_job(h, web.json()["id"])
            origins = {j["id"]: j["origin"] for j in h.get("/api/jobs").json()}
            assert origins == {web.json()["id"]: "web", job_id: "bridge"}
    finally:
        blender.stop()


@pytest.fixture
def linked(catalog, monkeypatch, tmp_path: Path) -> Iterator[tuple[BridgeServer, TestClient, threading.Event, threading.Event]]:
    """The bridge and the web app in this process, as `mediaidx serve` runs them, with scans held at their
    first progress event until ``gate`` is set or they are cancelled (so a scan is surely still running)."""
    _lib, cat, cache = catalog
    gate, holding = threading.Event(), threading.Event()
    real_scan = MediaIndexer.scan

    def held_scan(self: MediaIndexer, *roots: Any, progress: Any = None, cancel: Any = None, **kw: Any) -> Any:
        def held(ev: Any) -> None:
            if progress is not None:
                progress(ev)
            holding.set()
            while not gate.is_set() and not (cancel is not None and cancel.is_set()):
                time.sleep(0.01)

        return real_scan(self, *roots, progress=held, cancel=cancel, **kw)

    monkeypatch.setattr(MediaIndexer, "scan", held_scan)
    server = BridgeServer(cat, cache_dir=cache, bind="tcp://127.0.0.1:*", allow_roots=[str(tmp_path)])
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    server.wait_ready()
    with TestClient(create_app(WebContext(cat, cache, bridge=server)), base_url="http://127.0.0.1:8765") as web:
        try:
            yield server, web, gate, holding
        finally:
            gate.set()
            web.app.state.ctx.jobs.close()
            server.stop()
            thread.join(15)


def test_cancel_a_zeromq_scan_from_the_web_and_409_while_it_runs(linked, tmp_path: Path) -> None:
    server, web, _gate, holding = linked
    blender = BridgeClient(server.bound, name="lighting", heartbeat_s=0.2, dead_after_s=2.0).start()
    try:
        assert blender.wait(lambda: blender.state == "connected", 10), blender.last_error
        done: list[dict] = []
        blender.on("job.done", lambda data, msg: done.append(data))
        job_id = blender.call("scan", {"thumbs": False})["job"]
        assert holding.wait(30)
        running = next(j for j in web.get("/api/jobs").json() if j["id"] == job_id)
        assert running["state"] == "running" and running["origin"] == "bridge" and running["session"] == "lighting"
        assert running["progress"]["phase"]
        # A web scan now: refused with a JSON error that names the running job.
        refused = web.post("/api/scans", json={"roots": [str(tmp_path / "elsewhere")]})
        assert refused.status_code == 409
        err = refused.json()["error"]
        assert err["code"] == "conflict" and err["job"] == job_id
        assert f"scan job {job_id}" in err["message"] and "lighting" in err["message"]
        assert not [j for j in web.get("/api/jobs").json() if j["origin"] == "web"]
        # Cancel it from the web: through the bridge loop, as the ZeroMQ `cancel` op does.
        cancelled = web.post(f"/api/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["cancelling"] is True
        final = wait_job(web, job_id)
        assert final["state"] == "cancelled" and final["origin"] == "bridge" and final["result"]["complete"] is False
        assert blender.wait(lambda: done, 10) and done[0] == {**done[0], "job": job_id, "state": "cancelled"}
        assert blender.call("jobs")[0]["state"] == "cancelled"
        assert web.post("/api/jobs/987654/cancel").status_code == 404
    finally:
        blender.stop()


def test_a_zeromq_scan_is_refused_while_a_web_scan_runs(linked, tmp_path: Path) -> None:
    server, web, gate, holding = linked
    blender = BridgeClient(server.bound, name="lighting", heartbeat_s=0.2, dead_after_s=2.0).start()
    try:
        assert blender.wait(lambda: blender.state == "connected", 10), blender.last_error
        (tmp_path / "incoming").mkdir()
        job = web.post("/api/scans", json={"roots": [str(tmp_path / "incoming")], "dry_run": False}).json()
        assert holding.wait(30)
        with pytest.raises(P.RemoteError) as err:
            blender.call("scan", {"thumbs": False})
        assert err.value.code == P.CONFLICT and f"scan job {job['id']} (web)" in err.value.message
        gate.set()
        assert wait_job(web, job["id"])["state"] == "done"
    finally:
        blender.stop()


def test_serve_gives_both_services_one_root_policy(catalog, serve, tmp_path: Path) -> None:
    """`mediaidx serve` with MEDIAIDX_ALLOW_ROOTS (and --allow-root): HTTP and ZeroMQ allow and refuse the same."""
    _lib, cat, cache = catalog
    allowed, other, outside = tmp_path / "allowed", tmp_path / "other", tmp_path / "outside"
    for d in (allowed / "a", allowed / "b", other / "c", outside):
        d.mkdir(parents=True)
        synth.make_image(d / "still.png", width=16, height=16)
    env = {**os.environ, "MEDIAIDX_ALLOW_ROOTS": f"{allowed}{os.pathsep}{tmp_path / 'nothing-here'}"}
    p = serve(cat, cache, ["--allow-root", str(other)], env=env)
    blender = BridgeClient(p.endpoint, name="comp-station", heartbeat_s=0.2, dead_after_s=2.0).start()
    try:
        assert blender.wait(lambda: blender.state == "connected", 10), blender.last_error
        with p.http() as h:
            r = h.post("/api/scans", json={"roots": [str(outside)]})
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
            with pytest.raises(P.RemoteError) as err:
                blender.call("scan", {"roots": [str(outside)]})
            assert err.value.code == P.FORBIDDEN and err.value.message == r.json()["error"]["message"]
            for root in (allowed / "a", other / "c"):
                job = h.post("/api/scans", json={"roots": [str(root)], "dry_run": False, "thumbs": False}).json()
                assert wait_job(h, job["id"])["state"] == "done"
            done: list[dict] = []
            blender.on("job.done", lambda data, msg: done.append(data))
            blender.call("scan", {"roots": [str(allowed / "b")], "thumbs": False})
            assert blender.wait(lambda: done, 30) and done[0]["state"] == "done"
            assert {r["url"] for r in h.get("/api/roots").json()} >= {str(allowed / "a"), str(allowed / "b"),
                                                                       str(other / "c")}
    finally:
        blender.stop()
