"""Token authentication, loopback-only defaults, CORS closed, and `mediaidx serve` refusing to expose HTTP
without a token."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bridge.errors import UsageError
from bridge.web.auth import check_exposure
from bridge.web.server import HttpOptions

from .conftest import TOKEN, make_client


def test_exposed_without_token_is_refused() -> None:
    for host in ("0.0.0.0", "192.168.1.20", "::", "nas.local"):
        with pytest.raises(UsageError, match="without a token"):
            check_exposure(host, None)
        check_exposure(host, TOKEN)
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)
    with pytest.raises(UsageError, match="16 to 512"):
        check_exposure("0.0.0.0", "short")
    assert HttpOptions.parse("0.0.0.0:9000", TOKEN).exposed
    assert HttpOptions.parse(None) == HttpOptions("127.0.0.1", 8765)
    assert (HttpOptions.parse("[::1]:0").host, HttpOptions.parse("9001").port) == ("::1", 9001)
    with pytest.raises(UsageError, match="bad --http"):
        HttpOptions.parse("127.0.0.1:99999")


def test_cli_refuses_to_serve_exposed_http_without_a_token(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MEDIAIDX_TOKEN"}
    r = subprocess.run([sys.executable, "-m", "bridge.cli.app", "--catalog", str(tmp_path / "c.sqlite"), "serve",
                        "--bind", "tcp://127.0.0.1:*", "--http", "0.0.0.0:0"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 2 and "without a token" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_token_on_every_request(catalog) -> None:
    _lib, cat, cache = catalog
    with make_client(cat, cache, token=TOKEN) as c:
        assert c.get("/api/assets").status_code == 401
        assert c.get("/openapi.json").status_code == 401
        assert c.get("/api/assets/1/thumbnail").status_code == 401
        wrong = c.get("/api/stats", headers={"Authorization": "Bearer " + "x" * len(TOKEN)})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
        assert TOKEN not in wrong.text
        assert c.get("/api/stats", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        ok = c.get("/api/stats", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()["by_kind"]["video"] == 4
        # the dashboard shell loads without the token (it holds no data) and asks for it once
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200
        assert c.post("/api/login", json={"token": "nope" * 5}).status_code == 401
        login = c.post("/api/login", json={"token": TOKEN})
        assert login.status_code == 204
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert c.get("/api/assets").status_code == 200  # the cookie now
        c.post("/api/logout")
        c.cookies.clear()
        assert c.get("/api/assets").status_code == 401


def test_loopback_only_hosts_origin_checks_and_no_cors(client) -> None:
    assert client.get("/api/stats", headers={"Host": "attacker.example:8765"}).status_code == 403
    assert client.get("/api/stats", headers={"Host": "localhost:8765"}).status_code == 200
    assert client.get("/api/stats", headers={"Host": "[::1]:8765"}).status_code == 200
    cross = client.put("/api/assets/1/rating", json={"rating": 5}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    sandboxed = client.put("/api/assets/1/rating", json={"rating": 5}, headers={"Origin": "null"})
    assert sandboxed.status_code == 403
    same = client.put("/api/assets/1/rating", json={"rating": 5}, headers={"Origin": "http://127.0.0.1:8765"})
    assert same.status_code == 200
    r = client.get("/api/stats", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    pre = client.options("/api/stats", headers={"Origin": "http://evil.example",
                                                 "Access-Control-Request-Method": "PUT"})
    assert "access-control-allow-origin" not in pre.headers


def test_live_service_with_token_never_logs_it(catalog, serve) -> None:
    _lib, cat, cache = catalog
    env = {**os.environ, "MEDIAIDX_TOKEN": TOKEN}
    p = serve(cat, cache, env=env, verbose=True)
    with p.http() as h:
        assert h.get("/api/assets").status_code == 401
        assert h.get("/api/assets", headers={"Authorization": f"Bearer {TOKEN}wrong"}).status_code == 401
        assert h.get("/api/assets", headers={"Authorization": f"Bearer {TOKEN}"}).json()["total"] == 7
        assert h.get("/api/assets/123456", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    err = p.stop()
    assert TOKEN not in err and TOKEN not in "".join(p.proc.stdout.readlines())


def test_a_busy_port(tmp_path, capsys) -> None:
    """An address given with --http that is taken is an error; the default one only turns the dashboard off
    (another mediaidx may have it), so the bridge still starts."""
    import socket

    from bridge.service import BridgeServer

    busy = socket.create_server(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    try:
        r = subprocess.run([sys.executable, "-m", "bridge.cli.app", "--catalog", str(tmp_path / "c.sqlite"), "serve",
                            "--bind", "tcp://127.0.0.1:*", "--http", f"127.0.0.1:{port}"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 2 and "cannot serve HTTP" in r.stderr
        bridge = BridgeServer(tmp_path / "c.sqlite", bind="tcp://127.0.0.1:0")
        opts = HttpOptions(port=port)
        assert opts.attach(bridge) is None and opts.url is None
        assert "busy" in capsys.readouterr().err
    finally:
        busy.close()


def test_served_files_are_never_run_by_the_browser(tmp_path) -> None:
    """A catalogued clip swapped for a link to an HTML page (anyone who can write to the share can do that)
    must not come back as a page the dashboard's origin would run; a non-UTF-8 name still downloads."""
    from bridge import MediaIndexer
    from bridge.synth import make_audio

    lib = tmp_path / "lib"
    lib.mkdir()
    make_audio(lib / "clip.wav", seconds=0.2)
    make_audio(lib / os.fsdecode(b"bad\xffname.wav"), seconds=0.2)
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(lib)
        ids = {a.name: a.id for a in ix.search(None)}
    (lib / "evil.html").write_text("<script>alert(1)</script>")
    os.unlink(lib / "clip.wav")
    os.symlink(lib / "evil.html", lib / "clip.wav")
    with make_client(cat, cache) as c:
        r = c.get(f"/api/assets/{ids['clip.wav']}/file")
        assert r.status_code == 200
        assert "html" not in r.headers["content-type"] and r.headers["content-type"].startswith("audio/")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in r.headers["content-security-policy"]
        assert r.headers["cross-origin-resource-policy"] == "same-origin"
        assert "evil" not in r.headers["content-disposition"]
        odd = next(i for n, i in ids.items() if n.startswith("bad"))
        r = c.get(f"/api/assets/{odd}/file")
        assert r.status_code == 200 and r.content[:4] == b"RIFF"
        c.app.state.ctx.jobs.close()


# -- which roots and paths a client may name (bridge/service/rootpolicy.py) ----------------------------------------

def _folder(path, n: int = 2):
    from bridge.synth import make_image

    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        make_image(path / f"still_{i}.png", width=16 + i, height=16)
    return path


def test_http_scans_only_the_catalogs_roots_and_allowed_folders(catalog, tmp_path) -> None:
    """403 before any job starts (dry runs too) for a folder that is neither a root of the catalog nor inside an
    allowed folder, a symlink out of an allowed folder, a URL outside the allowed prefixes; the rest scans."""
    from bridge.service.rootpolicy import RootPolicy

    from .conftest import wait_job

    lib, cat, cache = catalog
    allowed, outside = tmp_path / "allowed", _folder(tmp_path / "outside")
    _folder(allowed / "shoot")
    os.symlink(outside, allowed / "escape")
    policy = RootPolicy([allowed, "sftp://127.0.0.1:1/allowed"])
    with make_client(cat, cache, policy=policy) as c:
        for roots in ([outside], [allowed / "escape"], [lib, outside], ["/"], [lib / "sub"],
                      ["smb://attacker.example/share"], ["sftp://127.0.0.1:1/other"], ["sftp://127.0.0.1:1/allowed/./x"]):
            for dry in (True, False):
                r = c.post("/api/scans", json={"roots": [str(x) for x in roots], "dry_run": dry})
                assert r.status_code == 403, (roots, r.text)
                err = r.json()["error"]
                assert err["code"] == "forbidden" and "\n" not in err["message"]
        msg = c.post("/api/scans", json={"roots": [str(outside)]}).json()["error"]["message"]
        assert msg.startswith(f"{outside}: not a root of this catalog") and "--allow-root" in msg
        assert c.get("/api/jobs").json() == [] and [r["url"] for r in c.get("/api/roots").json()] == [str(lib)]
        # The catalog's root (named, or all by default) and a folder inside an allowed one scan.
        assert wait_job(c, c.post("/api/scans", json={"roots": [str(lib)]}).json()["id"])["state"] == "done"
        assert wait_job(c, c.post("/api/scans", json={}).json()["id"])["state"] == "done"
        job = wait_job(c, c.post("/api/scans", json={"roots": [str(allowed / "shoot")], "dry_run": False,
                                                     "thumbs": False}).json()["id"])
        assert job["state"] == "done" and job["result"]["added"] == 2
        assert sorted(r["url"] for r in c.get("/api/roots").json()) == sorted([str(lib), str(allowed / "shoot")])
        # Inside the allowed URL prefix: the job starts (and fails: nothing listens on port 1).
        r = c.post("/api/scans", json={"roots": ["sftp://127.0.0.1:1/allowed/shots"]})
        assert r.status_code == 202 and wait_job(c, r.json()["id"])["state"] == "failed"
        c.app.state.ctx.jobs.close()


def test_a_workflow_over_http_names_only_allowed_paths(catalog, tmp_path) -> None:
    """Every path of every step is checked before any step runs: a refused workflow leaves the catalog and the
    destinations as they were."""
    import hashlib

    from bridge.service.rootpolicy import RootPolicy

    from .conftest import wait_job

    _lib, cat, cache = catalog
    allowed, elsewhere = tmp_path / "allowed", tmp_path / "elsewhere"
    shoot, outside = _folder(allowed / "shoot"), _folder(tmp_path / "outside")
    os.symlink(outside, allowed / "escape")
    before = hashlib.sha256(cat.read_bytes()).hexdigest()
    scan_first = {"action": "scan", "root": str(shoot), "thumbs": False}
    refused = [
        [scan_first, {"action": "backup", "backup_root": str(elsewhere / "backup")}],
        [scan_first, {"action": "backup", "backup_root": str(allowed / "escape" / "backup")}],
        [scan_first, {"action": "sync_album", "source": str(outside), "root": str(allowed / "album"),
                      "category": "trip"}],
        [scan_first, {"action": "sync_album", "source": str(shoot), "root": str(elsewhere), "category": "trip"}],
        [scan_first, {"action": "sync_album", "source": str(shoot), "root": str(allowed), "category": "escape"}],
        [scan_first, {"action": "scan", "root": [str(shoot), str(outside)]}],
        [{"action": "scan", "root": str(shoot), "follow_symlinks": True}],
        [scan_first, {"action": "backup", "backup_root": "relative/backup"}],
    ]
    with make_client(cat, cache, policy=RootPolicy([allowed])) as c:
        for steps in refused:
            for dry in (True, False):
                r = c.post("/api/workflows", json={"workflow": {"workflow": steps}, "dry_run": dry})
                assert r.status_code == 403, (steps, r.text)
                assert r.json()["error"]["code"] == "forbidden" and r.json()["error"]["message"].startswith("step ")
        assert c.get("/api/jobs").json() == []
        assert hashlib.sha256(cat.read_bytes()).hexdigest() == before
        assert not elsewhere.exists() and not (allowed / "album").exists()
        assert not list(outside.glob("**/trip")) and sorted(p.name for p in outside.iterdir()) == [
            "still_0.png", "still_1.png"]
        # Inside: the same workflow runs.
        ok = [scan_first, {"action": "backup", "backup_root": str(allowed / "backup"), "kind": "image", "create_root": True}]
        job = wait_job(c, c.post("/api/workflows", json={"workflow": {"workflow": ok}, "dry_run": False}).json()["id"])
        assert job["state"] == "done", job
        assert len(list((allowed / "backup").rglob("*.png"))) == 2 and len(list((allowed / "backup").rglob("*.jpg"))) == 2
        c.app.state.ctx.jobs.close()
