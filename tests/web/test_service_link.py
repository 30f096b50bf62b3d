"""The web API and the ZeroMQ bridge in one `mediaidx serve` process: the dashboard sees the bridge's own
Blender sessions and pushes shots to them."""

from __future__ import annotations

from blender_mediaidx.core.client import BridgeClient


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
