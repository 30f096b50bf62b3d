"""The HTTP service: images made from files swapped for links out of the roots, the login
cookie of a base64 token, and HTTP ranges on the file endpoint (RFC 9110, section 14)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from bridge import MediaIndexer
from bridge.synth import make_image

from .conftest import make_client


@pytest.fixture
def unthumbed(tmp_path: Path) -> tuple[Path, Path, Path, Path, int]:
    """(lib, outside, catalog, cache, id): one still scanned without a thumbnail (so one is made on demand)."""
    lib, outside = tmp_path / "lib", tmp_path / "outside"
    lib.mkdir()
    outside.mkdir()
    make_image(lib / "still.png", width=64, height=48)
    make_image(outside / "private.png", width=200, height=100)
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(lib, thumbs=False)
        (asset,) = ix.search(None)
        assert asset.thumb is None
    return lib, outside, cat, cache, asset.id


def test_no_thumbnail_is_made_from_a_file_outside_the_roots(unthumbed) -> None:
    """A catalogued still swapped for a link to a picture outside the roots: the file endpoint refused it, but
    the thumbnail and hero endpoints made and served a picture of the outside file."""
    lib, outside, cat, cache, aid = unthumbed
    os.unlink(lib / "still.png")
    os.symlink(outside / "private.png", lib / "still.png")
    with make_client(cat, cache) as c:
        for endpoint in ("file", "thumbnail", "hero"):
            r = c.get(f"/api/assets/{aid}/{endpoint}")
            assert r.status_code == 403, (endpoint, r.status_code)
            assert r.json()["error"]["code"] == "forbidden"
        c.app.state.ctx.jobs.close()
    assert not list(cache.rglob("*.jpg"))  # nothing of the outside file was written to the cache


def test_a_fifo_in_place_of_the_file_does_not_hold_the_request(unthumbed) -> None:
    """Opening a FIFO blocks until a writer comes: the thumbnail request hung for good (one worker thread lost
    per request). Now a 404 at once, as the file endpoint answers."""
    lib, _outside, cat, cache, aid = unthumbed
    os.unlink(lib / "still.png")
    os.mkfifo(lib / "still.png")
    done = threading.Event()

    def unblock() -> None:  # so the old code fails this test instead of hanging it
        if not done.wait(8):
            fd = os.open(lib / "still.png", os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)

    threading.Thread(target=unblock, daemon=True).start()
    with make_client(cat, cache) as c:
        started = time.monotonic()
        r = c.get(f"/api/assets/{aid}/thumbnail")
        elapsed = time.monotonic() - started
        done.set()
        assert r.status_code == 404 and r.json()["error"]["message"] == "the file is not there any more"
        assert elapsed < 5
        c.app.state.ctx.jobs.close()


def test_login_cookie_of_a_base64_token(catalog) -> None:
    """Tokens may hold '/', '+' and '=' (`openssl rand -base64 24`): Set-Cookie quotes such a value and the
    browser sends the quotes back; the service compared them too, so the dashboard asked for the token forever."""
    _lib, cat, cache = catalog
    token = "q3k/Zr+8mW1x=Tb0Yp9LhA=="
    with make_client(cat, cache, token=token) as c:
        assert c.post("/api/login", json={"token": token}).status_code == 204
        assert c.get("/api/stats").status_code == 200
        (name,) = c.cookies.keys()  # the service's own cookie name (one per port)
        c.cookies.clear()
        c.cookies.set(name, '"wrong/token+value=="')
        assert c.get("/api/stats").status_code == 401
        c.app.state.ctx.jobs.close()


def test_http_ranges_on_the_file(catalog) -> None:
    """206 for satisfiable ranges, 416 (JSON, Content-Range */size) only when none is, and a Range header that
    is malformed or in another unit ignored (the whole file, 200) rather than a 400 in plain text."""
    _lib, cat, cache = catalog
    with make_client(cat, cache) as c:
        a = c.get("/api/assets", params={"q": "A001_C001"}).json()["results"][0]
        whole = Path(a["path"]).read_bytes()
        size, url = len(whole), a["file_url"]

        def get(rng: str):
            return c.get(url, headers={"Range": rng})

        r = get("bytes=0-9")
        assert (r.status_code, r.headers["content-range"], r.content) == (206, f"bytes 0-9/{size}", whole[:10])
        assert r.headers["x-content-type-options"] == "nosniff"
        r = get("bytes=-10")
        assert (r.status_code, r.content) == (206, whole[-10:])
        r = get(f"bytes={size - 1}-{size + 100}")
        assert (r.status_code, r.headers["content-range"]) == (206, f"bytes {size - 1}-{size - 1}/{size}")
        r = get(f"bytes=-{size * 2}")
        assert (r.status_code, r.content) == (206, whole)
        # one satisfiable range among unsatisfiable ones is served
        r = get(f"bytes=0-1,{size + 10}-")
        assert (r.status_code, r.headers["content-range"], r.content) == (206, f"bytes 0-1/{size}", whole[:2])
        r = get("bytes=0-1,4-5")
        assert r.status_code == 206 and r.headers["content-type"].startswith("multipart/byteranges")
        # none satisfiable: 416 with the JSON error body
        for rng in (f"bytes={size}-", "bytes=-0", f"bytes={'9' * 5000}-"):
            r = get(rng)
            assert r.status_code == 416, rng
            assert r.headers["content-range"] == f"bytes */{size}"
            assert r.json()["error"]["message"] == "the requested range is not inside the file"
        # invalid: ignored, the whole file
        for rng in ("bytes=5-2", "bytes=abc", "items=0-1", "bytes=", "bytes=1-x", f"bytes=0-{'9' * 5000}x"):
            r = get(rng)
            assert (r.status_code, r.content) == (200, whole), rng
        # the images too
        r = c.get(a["thumb_url"], headers={"Range": "bytes=9-3"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        # a HEAD (curl -I, download managers) answers like the GET, without the body
        r = c.head(url)
        assert r.status_code == 200 and int(r.headers["content-length"]) == size and r.content == b""
        assert r.headers["accept-ranges"] == "bytes"
        c.app.state.ctx.jobs.close()


def test_an_empty_file_and_ranges(tmp_path: Path) -> None:
    """A zero-byte file: a suffix range gives the (empty) whole file, a range from 0 is not satisfiable."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "empty.wav").write_bytes(b"")
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(lib, thumbs=False)
        (asset,) = ix.search(None, status="failed")
    with make_client(cat, cache) as c:
        url = f"/api/assets/{asset.id}/file"
        r = c.get(url, headers={"Range": "bytes=-5"})
        assert (r.status_code, r.content) == (200, b"")
        r = c.get(url, headers={"Range": "bytes=0-"})
        assert r.status_code == 416 and r.headers["content-range"] == "bytes */0"
        c.app.state.ctx.jobs.close()


def test_errors_do_not_echo_a_megabyte_back(client) -> None:
    """A refused root or a bad workflow value is quoted in the message: the whole of it came back (2 MB for a
    1 MB path), and the dashboard printed it under the form. The message is cut, still one line."""
    big = "/" + "a" * 1_000_000
    for r in (client.post("/api/scans", json={"roots": [big]}),
              client.post("/api/workflows", json={"workflow": {"action": "x" * 1_000_000}}),
              client.post("/api/workflows", json={"workflow": {"action": "scan", "root": [[1] * 300_000]}})):
        assert r.status_code in (400, 403)
        message = r.json()["error"]["message"]
        assert len(message) <= 2000 and message.endswith("…") and "\n" not in message


def test_a_malformed_origin_is_refused_not_a_server_error(client) -> None:
    """`Origin: http://[::1` made urlsplit raise inside the security middleware: a 500 and a traceback in the
    log for a bad header. It is a cross-site request like any Origin that is not ours, refused with 403."""
    for origin in ("http://[", "http://[::1", "http://[::1:8765"):
        r = client.put("/api/assets/1/rating", json={"rating": 5}, headers={"Origin": origin})
        assert r.status_code == 403, origin
        assert r.json()["error"] == {"code": "forbidden", "message": "cross-site requests are not allowed"}
    assert client.get("/api/assets/1").json()["rating"] is None


def test_a_chunked_body_past_the_limit_says_so(client) -> None:
    """A body sent without Content-Length (chunked) past 4 MiB was cut off and answered 400 "There was an error
    parsing the body"; now the same 413 and message as a declared one, and nothing changes."""

    def chunks():
        yield b'{"note": "'
        for _ in range(5):
            yield b"a" * (1 << 20)
        yield b'"}'

    r = client.put("/api/assets/1/note", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == {"code": "bad_request", "message": "request bodies are limited to 4194304 bytes"}
    assert client.get("/api/assets/1").json()["note"] is None
    ok = client.put("/api/assets/1/note", content=iter([b'{"note": "', b"short", b'"}']),
                    headers={"content-type": "application/json"})
    assert ok.status_code == 200 and ok.json()["asset"]["note"] == "short"
