"""The REST API against a real catalog of generated media (in-process app; no network)."""

from __future__ import annotations

import json
from pathlib import Path

from bridge import synth

from .conftest import wait_job


def ids_by_name(client) -> dict[str, int]:
    return {a["name"]: a["id"] for a in client.get("/api/assets", params={"limit": 1000}).json()["results"]}


def test_list_pages_sorts_and_filters(client) -> None:
    page = client.get("/api/assets").json()
    assert page["total"] == 7 and page["total_exact"] and len(page["results"]) == 7
    ids = [a["id"] for a in page["results"]]
    assert ids == sorted(ids, reverse=True)  # newest first by default
    a = page["results"][0]
    assert a["thumb_url"] == f"/api/assets/{a['id']}/thumbnail" and "thumb" not in a and "probe" not in a
    first = client.get("/api/assets", params={"limit": 3, "offset": 0}).json()
    second = client.get("/api/assets", params={"limit": 3, "offset": 3}).json()
    assert len(first["results"]) == 3 and first["total"] == 7
    assert not {x["id"] for x in first["results"]} & {x["id"] for x in second["results"]}
    by_name = [x["name"] for x in client.get("/api/assets", params={"sort": "name", "order": "asc"}).json()["results"]]
    assert by_name == sorted(by_name)
    videos = client.get("/api/assets", params={"kind": "video"}).json()
    assert videos["total"] == 4 and {x["kind"] for x in videos["results"]} == {"video"}
    with_audio = client.get("/api/assets", params={"kind": "video", "has_audio": "true"}).json()
    assert with_audio["total"] == 4
    acme = client.get("/api/assets", params={"camera": "cine one"}).json()
    assert {x["name"] for x in acme["results"]} == {"A001_C001_0506.mov", "A001_C002_0506.mov"}
    may = client.get("/api/assets", params={"date_from": "2024-05", "date_to": "2024-05-06", "kind": "image"}).json()
    assert may["total"] == 2
    longer = client.get("/api/assets", params={"min_duration": 1.9, "kind": "video"}).json()
    assert {x["name"] for x in longer["results"]} == {"A001_C001_0506.mov", "B001_C001_0506.mp4"}


def test_full_text_search(client) -> None:
    found = client.get("/api/assets", params={"q": "harbour ambience"}).json()
    assert [x["name"] for x in found["results"]] == ["Harbour_ambience_48k.wav"]
    shoot = client.get("/api/assets", params={"q": '"harbour shoot" -phone', "kind": "video"}).json()
    assert {x["name"] for x in shoot["results"]} == {"A001_C001_0506.mov", "A001_C002_0506.mov", "B001_C001_0506.mp4"}
    assert client.get("/api/assets", params={"q": "zzznothing"}).json()["total"] == 0


def test_detail_has_the_full_probe(client) -> None:
    aid = ids_by_name(client)["A001_C001_0506.mov"]
    a = client.get(f"/api/assets/{aid}").json()
    assert a["probe"]["timecode"] == "10:00:00:00" and a["probe"]["streams"][0]["codec"] == "h264"
    assert a["fps"] == "24000/1001" and a["camera_model"] == "Cine One"
    assert a["summary"]["video_codec"] == "h264"


def test_images_by_asset_id(client) -> None:
    names = ids_by_name(client)
    thumb = client.get(f"/api/assets/{names['A001_C001_0506.mov']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"
    hero = client.get(f"/api/assets/{names['IMG_1001.jpg']}/hero")
    assert hero.status_code == 200 and hero.headers["content-type"].startswith("image/")
    f = client.get(f"/api/assets/{names['IMG_1002.jpg']}/file", headers={"Range": "bytes=0-1"})
    assert f.status_code == 206 and f.content == b"\xff\xd8"
    assert client.get(f"/api/assets/{names['Harbour_ambience_48k.wav']}/thumbnail").status_code == 404


def test_hero_falls_back_to_the_poster(client, monkeypatch) -> None:
    from bridge.indexer import MediaIndexer

    aid = ids_by_name(client)["B001_C001_0506.mp4"]
    poster = client.get(f"/api/assets/{aid}/thumbnail").content
    monkeypatch.setattr(MediaIndexer, "hero_image", lambda self, ref: None, raising=False)
    assert client.get(f"/api/assets/{aid}/hero").content == poster


def test_rating_tags_notes_with_dry_runs(client) -> None:
    aid = ids_by_name(client)["A001_C002_0506.mov"]
    dry = client.put(f"/api/assets/{aid}/rating", json={"rating": 4, "dry_run": True}).json()
    assert dry["dry_run"] and dry["plan"][0]["reason"] == "none -> 4" and dry["asset"] is None
    assert client.get(f"/api/assets/{aid}").json()["rating"] is None
    done = client.put(f"/api/assets/{aid}/rating", json={"rating": 4}).json()
    assert done["asset"]["rating"] == 4
    assert client.get("/api/assets", params={"min_rating": 4}).json()["results"][0]["id"] == aid
    tags = client.post(f"/api/assets/{aid}/tags", json={"add": ["hero", "Selects", "hero"]}).json()
    assert tags["asset"]["tags"] == ["hero", "Selects"]
    tags = client.post(f"/api/assets/{aid}/tags", json={"remove": ["HERO"]}).json()
    assert tags["asset"]["tags"] == ["Selects"]
    assert client.get("/api/assets", params={"tag": "Selects"}).json()["total"] == 1
    note = client.put(f"/api/assets/{aid}/note", json={"note": "best take, slight wobble"}).json()
    assert note["asset"]["note"] == "best take, slight wobble"
    assert client.get("/api/assets", params={"q": "wobble"}).json()["results"][0]["id"] == aid
    cleared = client.put(f"/api/assets/{aid}/rating", json={"rating": None}).json()
    assert cleared["asset"]["rating"] is None


def test_bad_requests_are_4xx_json(client) -> None:
    cases = [
        ("get", "/api/assets/999999", None, 404),
        ("get", "/api/assets/0", None, 422),
        ("get", "/api/assets/99999999999999999999999", None, 422),
        ("get", "/api/assets?limit=0", None, 422),
        ("get", "/api/assets?sort=sideways", None, 422),
        ("get", "/api/assets?resolution=huge", None, 400),
        ("get", "/api/assets?date_from=May", None, 400),
        ("get", "/api/assets?q=%22%22", None, 400),
        ("get", "/api/assets?min_duration=nan", None, 422),
        ("put", "/api/assets/1/rating", {"rating": 9}, 422),
        ("put", "/api/assets/1/rating", {"stars": 3}, 422),
        ("post", "/api/assets/1/tags", {"add": ["   "]}, 400),
        ("post", "/api/assets/1/tags", {"add": ["x" * 101]}, 400),
        ("get", "/api/jobs/77", None, 404),
        ("post", "/api/workflows", {"workflow": {"action": "explode"}}, 400),
        ("post", "/api/scans", {"roots": ["relative/path"]}, 400),
        ("post", "/api/sessions/blender/push", {"assets": [1]}, 503),
        ("get", "/api/nothing-here", None, 404),
    ]
    for method, url, body, status in cases:
        r = getattr(client, method)(url, **({"json": body} if body is not None else {}))
        assert r.status_code == status, (url, body, r.status_code, r.text)
        err = r.json()["error"]
        assert err["code"] and err["message"] and "Traceback" not in r.text, r.text
    r = client.post("/api/workflows", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_request"


def test_stats(client) -> None:
    st = client.get("/api/stats").json()
    assert st["by_kind"] == {"video": 4, "image": 2, "audio": 1}
    assert st["by_month"] == {"2024-05": 6} and "Acme Cine One" in st["by_camera"]
    assert st["size_by_kind"]["video"] > 0 and st["total_size"] == sum(st["size_by_kind"].values())
    assert client.get("/api/roots").json()[0]["url"].endswith("library")


def test_scan_job_dry_run_then_real_with_live_events(client, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for i in range(12):
        synth.make_image(incoming / f"plate_{i:02d}.png", width=32 + i, height=24)
    dry = client.post("/api/scans", json={"roots": [str(incoming)]})
    assert dry.status_code == 202 and dry.json()["params"]["dry_run"] is True
    j = wait_job(client, dry.json()["id"])
    assert j["state"] == "done" and j["result"]["dry_run"] and j["result"]["added"] == 12
    assert client.get("/api/assets").json()["total"] == 7  # nothing written
    real = client.post("/api/scans", json={"roots": [str(incoming)], "dry_run": False}).json()
    events = []
    with client.stream("GET", f"/api/jobs/{real['id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
                if name == "done":
                    break
    assert events[-1][0] == "done" and events[-1][1]["state"] == "done"
    assert events[-1][1]["result"]["added"] == 12
    assert all(e[1]["id"] == real["id"] for e in events)
    assert client.get("/api/assets").json()["total"] == 19
    assert [j["id"] for j in client.get("/api/jobs").json()] == [real["id"], dry.json()["id"]]


def test_scan_cancel(client, tmp_path: Path) -> None:
    incoming = tmp_path / "many"
    incoming.mkdir()
    for i in range(40):
        synth.make_video(incoming / f"clip_{i:02d}.mp4", frames=30, width=96, height=64)
    job = client.post("/api/scans", json={"roots": [str(incoming)], "dry_run": False}).json()
    assert client.post("/api/scans", json={"roots": [str(incoming)]}).status_code == 409
    cancelled = client.post(f"/api/jobs/{job['id']}/cancel").json()
    assert cancelled["id"] == job["id"]
    j = wait_job(client, job["id"])
    assert j["state"] in ("cancelled", "done")  # a fast machine may finish first; never failed
    if j["state"] == "cancelled":
        assert j["result"]["complete"] is False


def test_workflow_dry_run_first(client, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    wf = {"workflow": [{"action": "backup", "backup_root": str(backup), "kind": "image", "create_root": True}, {"action": "stats"}]}
    dry = wait_job(client, client.post("/api/workflows", json={"workflow": wf}).json()["id"])
    assert dry["state"] == "done" and dry["result"]["dry_run"] and not backup.exists()
    assert [s["action"] for s in dry["result"]["steps"]] == ["backup", "stats"]
    real = wait_job(client, client.post("/api/workflows", json={"workflow": wf, "dry_run": False}).json()["id"])
    assert real["state"] == "done" and len(list(backup.rglob("*.jpg"))) == 2


def test_openapi_and_dashboard_shell(client) -> None:
    doc = client.get("/openapi.json").json()
    for path in ("/api/assets", "/api/assets/{asset_id}", "/api/assets/{asset_id}/thumbnail", "/api/stats",
                 "/api/scans", "/api/jobs/{job_id}/events", "/api/workflows", "/api/sessions/{name}/push"):
        assert path in doc["paths"], path
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_a_fresh_catalog_and_a_first_scan(tmp_path: Path, demo_catalog) -> None:
    """Before any scan the service answers with an empty library; a scan from the web creates the catalog."""
    from bridge.service.rootpolicy import RootPolicy

    from .conftest import make_client

    lib, _cat, _cache = demo_catalog
    cat = tmp_path / "new" / "catalog.sqlite"
    with make_client(cat, tmp_path / "cache", policy=RootPolicy([lib.parent])) as c:
        assert c.get("/api/assets").json()["total"] == 0
        assert c.get("/api/stats").json()["assets"] == 0
        assert c.post("/api/scans", json={}).status_code == 400  # no root known yet
        assert not cat.exists()
        job = c.post("/api/scans", json={"roots": [str(lib)], "dry_run": False, "thumbs": False}).json()
        assert wait_job(c, job["id"])["state"] == "done"
        assert c.get("/api/assets").json()["total"] == 7 and cat.exists()


def test_oversized_bodies_are_refused(client) -> None:
    r = client.post("/api/workflows", content=b"[" + b"1," * (3 << 20) + b"1]",
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["message"].startswith("request bodies are limited")
