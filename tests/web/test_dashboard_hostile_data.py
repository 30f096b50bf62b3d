"""Catalog data written by others (file and folder names, EXIF camera names, tags, notes, Blender session
names) is shown by the dashboard as text; none of it runs as script. Headless chromium against a live serve."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from blender_mediaidx.core.client import BridgeClient
from bridge import MediaIndexer
from bridge.synth import make_image

from .test_dashboard import CHROMIUM, browser, page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} (apt install chromium)")

HOSTILE = '<img src=x onerror="window.__pwned=1">'


def test_hostile_catalog_text_is_shown_never_run(tmp_path: Path, serve, page) -> None:  # noqa: F811
    lib = tmp_path / "lib"
    folder = lib / f"shoot {HOSTILE.replace('/', '')}"
    folder.mkdir(parents=True)
    make_image(folder / f"{HOSTILE}.jpg", width=64, height=48,
               exif={271: "<svg onload=window.__pwned=2>", 272: "M\"odel' <b>x</b>"})
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(lib, thumbs=True)
        (asset,) = ix.search(None)
        ix.tag(asset.id, ["<script>window.__pwned=3</script>", "a\"b'c"])
        ix.note(asset.id, '"><iframe srcdoc="<script>parent.__pwned=4</script>">\nline two')
    server = serve(cat, cache)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    blender = BridgeClient(server.endpoint, name="<img src=y onerror=window.__pwned=5>", heartbeat_s=0.2,
                           dead_after_s=2.0).start()
    try:
        assert blender.wait(lambda: blender.state == "connected", 10), blender.last_error
        page.goto(server.url + "/")
        page.locator(".card").first.wait_for()
        assert page.inner_text(".card .name") == f"{HOSTILE}.jpg"
        page.locator(".card").first.click()
        page.wait_for_selector("#asset-title")
        assert page.inner_text("#asset-title") == f"{HOSTILE}.jpg"
        assert page.locator(".tag", has_text="<script>window.__pwned=3</script>").count() == 1
        assert page.input_value("#note").startswith('"><iframe')
        assert page.locator("#send-to option").first.inner_text().startswith("<img src=y")
        page.goto(server.url + "/#/stats")
        page.wait_for_selector("#chart-camera")
        assert "<svg onload" in (page.text_content("#chart-camera") or "")
        page.wait_for_timeout(500)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("main img[src='x'], main iframe, main script, main svg[onload]").count() == 0
        assert dialogs == []
    finally:
        blender.stop()


def test_another_site_cannot_frame_the_dashboard(catalog, serve, page) -> None:  # noqa: F811
    """Without a token the framed dashboard's own requests pass the Host and Origin checks, so a page of another
    origin could frame it under a decoy and have a user click "Scan" or "Run": the browser must refuse the frame.
    (The decoy is served on loopback: chromium's local-network checks would stop a public page here, other
    browsers do not.)"""
    _lib, cat, cache = catalog
    server = serve(cat, cache)

    class Decoy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f'<iframe src="{server.url}/#/jobs" width="800" height="600"></iframe>'.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    decoy = HTTPServer(("127.0.0.1", 0), Decoy)
    threading.Thread(target=decoy.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://localhost:{decoy.server_port}/")
        page.wait_for_timeout(1500)
        framed = [f for f in page.frames if f is not page.main_frame]
        assert len(framed) == 1
        assert framed[0].query_selector("#view") is None and not framed[0].url.startswith(server.url)
    finally:
        decoy.shutdown()
        decoy.server_close()
    # the dashboard itself still runs under its Content-Security-Policy
    page.goto(server.url + "/#/jobs")
    page.wait_for_selector("#scan-dry")
    with server.http() as h:
        assert "frame-ancestors 'none'" in h.get("/").headers["content-security-policy"]
        assert h.get("/api/stats").headers["x-frame-options"] == "DENY"


def test_a_refused_change_on_the_asset_page_says_why(catalog, serve, page) -> None:  # noqa: F811
    """A tag over 100 characters or a note over 100,000 was refused by the service and the page said nothing
    (an unhandled rejection): the typed tag was even cleared, as if saved. Now the reason shows under the
    section, the tag stays in its box to correct, and "saved" appears only when it was."""
    _lib, cat, cache = catalog
    server = serve(cat, cache)
    with server.http() as h:
        aid = h.get("/api/assets", params={"q": "B001_C001"}).json()["results"][0]["id"]
    page.goto(f"{server.url}/#/asset/{aid}")
    page.wait_for_selector("#tag-input")
    long_tag = "t" * 101
    page.fill("#tag-input", long_tag)
    page.press("#tag-input", "Enter")
    page.wait_for_selector("#tag-error:not([hidden])")
    assert "tag too long" in page.inner_text("#tag-error")
    assert page.input_value("#tag-input") == long_tag
    page.fill("#tag-input", "plate")
    page.press("#tag-input", "Enter")
    page.wait_for_selector(".tag:has-text('plate')")
    assert page.locator("#tag-error").is_hidden() and page.input_value("#tag-input") == ""
    page.eval_on_selector("#note", "(el) => { el.value = 'n'.repeat(100001); }")
    page.click("#save-note")
    page.wait_for_selector("#note-error:not([hidden])")
    assert "at most 100000 characters" in page.inner_text("#note-error")
    assert page.inner_text(".saved") == ""
    page.route(f"**/api/assets/{aid}/rating", lambda route: route.fulfill(
        status=503, content_type="application/json",
        body='{"error": {"code": "unavailable", "message": "the catalog is busy"}}'))
    page.click(".stars button[data-value='3']")
    page.wait_for_selector("#rating-error:has-text('the catalog is busy')")
    assert page.inner_text("#rating-value") == "not rated"
    with server.http() as h:
        a = h.get(f"/api/assets/{aid}").json()
        assert (a["tags"], a["note"], a["rating"]) == (["plate"], None, None)


def test_playing_a_vanished_file_says_why(tmp_path: Path, serve, page) -> None:  # noqa: F811
    """Play on a clip whose file is gone (or now links out of the roots) left a dead player and no word; the
    page now shows the service's reason."""
    from bridge.synth import make_video

    lib = tmp_path / "lib"
    lib.mkdir()
    make_video(lib / "gone.mp4", frames=6, width=64, height=48)
    make_video(lib / "moved.mp4", frames=6, width=64, height=48)
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(lib, thumbs=True)
        ids = {a.name: a.id for a in ix.search(None)}
    (lib / "gone.mp4").unlink()
    (tmp_path / "elsewhere.mp4").write_bytes((lib / "moved.mp4").read_bytes())
    (lib / "moved.mp4").unlink()
    (lib / "moved.mp4").symlink_to(tmp_path / "elsewhere.mp4")
    server = serve(cat, cache)
    for name, why in (("gone.mp4", "the file is not there any more"), ("moved.mp4", "not inside any of")):
        page.goto(f"{server.url}/#/asset/{ids[name]}")
        page.click("#play")
        page.wait_for_selector("#play-error")
        assert why in page.inner_text("#play-error")
