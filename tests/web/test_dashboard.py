"""The dashboard end to end: headless Debian chromium (Playwright, no browser download) against a live
`mediaidx serve` on random loopback ports.

MEDIAIDX_SCREENSHOTS=docs/screenshots saves the main pages as PNG along the way (`make screenshots`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from blender_mediaidx.core.client import BridgeClient
from bridge import synth

from .conftest import TOKEN

CHROMIUM = Path(os.environ.get("MEDIAIDX_CHROMIUM", "/usr/bin/chromium"))
SHOTS = os.environ.get("MEDIAIDX_SCREENSHOTS")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} (apt install chromium)")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1366, "height": 860})
    p = ctx.new_page()
    p.set_default_timeout(20_000)
    yield p
    ctx.close()


def shot(page, name: str, full: bool = True) -> None:
    if SHOTS:
        page.wait_for_timeout(500)  # CSS transitions (progress bars) settle first
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=full)


def rating_of(server, asset_id: int) -> int | None:
    with server.http() as h:
        return h.get(f"/api/assets/{asset_id}").json()["rating"]


def test_search_open_asset_and_rating_persists(catalog, serve, page) -> None:
    _lib, cat, cache = catalog
    server = serve(cat, cache)
    page.goto(server.url + "/")
    cards = page.locator(".card")
    cards.first.wait_for()
    assert cards.count() == 7
    page.wait_for_function("[...document.querySelectorAll('.card img')].every(i => i.complete)")
    shot(page, "library")
    page.fill("#search", "harbour ambience")
    page.wait_for_function("document.querySelectorAll('.card').length === 1")
    assert page.locator(".card .name").inner_text() == "Harbour_ambience_48k.wav"
    page.fill("#search", "A001")
    page.wait_for_function("document.querySelectorAll('.card').length === 2")
    page.select_option("#f-sort", "name")
    page.select_option("#f-order", "asc")
    page.wait_for_function("document.querySelector('.card .name').textContent === 'A001_C001_0506.mov'")
    page.locator(".card", has_text="A001_C001_0506.mov").click()
    page.wait_for_selector("#asset-title")
    assert page.inner_text("#asset-title") == "A001_C001_0506.mov"
    asset_id = int(re.search(r"#/asset/(\d+)", page.url).group(1))
    page.wait_for_function("document.querySelector('#hero').naturalWidth > 0")
    assert "10:00:00:00" in page.inner_text("main")  # the probe, readable: timecode
    assert page.locator("table.streams td", has_text="h264").count() == 1
    assert page.inner_text("#rating-value") == "not rated"
    page.click(".stars button[data-value='4']")
    page.wait_for_function("document.querySelector('#rating-value').textContent === '4/5'")
    page.fill("#tag-input", "hero plate")
    page.press("#tag-input", "Enter")
    page.wait_for_selector(".tag:has-text('hero plate')")
    page.fill("#note", "Slight wobble at the end")
    page.click("#save-note")
    page.wait_for_selector(".saved:has-text('saved')")
    shot(page, "asset")
    page.reload()
    page.wait_for_selector("#asset-title")
    assert page.inner_text("#rating-value") == "4/5"
    assert page.locator(".stars button.on").count() == 4
    assert page.locator(".tag", has_text="hero plate").count() == 1
    assert page.input_value("#note") == "Slight wobble at the end"
    assert rating_of(server, asset_id) == 4
    page.goto(server.url + "/#/")
    page.select_option("#f-rating", "3")
    page.wait_for_function("document.querySelectorAll('.card').length === 1")


def dry_run_scan(page, url: str, folder: Path) -> None:
    """On the jobs page, ask for a dry-run scan of ``folder`` as a user does."""
    page.goto(url + "/#/jobs")
    page.wait_for_selector("#scan-roots")
    page.fill("#scan-roots", str(folder))
    page.click("#scan-dry")


def test_scan_progress_reaches_the_end(catalog, serve, page, tmp_path: Path) -> None:
    _lib, cat, cache = catalog
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for i in range(24):
        synth.make_image(incoming / f"still_{i:02d}.png", width=40 + i, height=30)
    for i in range(4):
        synth.make_video(incoming / f"take_{i}.mp4", frames=12, width=96, height=64)
    server = serve(cat, cache, ["--allow-root", str(tmp_path)])
    dry_run_scan(page, server.url, incoming)
    page.wait_for_selector(".job[data-state='done']")
    dry = page.inner_text(".job[data-state='done'] .job-text")
    assert "would have: added 28" in dry and "nothing changed" in dry
    assert page.locator("#no-jobs").count() == 0
    page.click("#scan-start")
    page.wait_for_selector(".job[data-job='2']")
    page.wait_for_selector(".job[data-job='2'][data-state='done']", timeout=60_000)
    text = page.inner_text(".job[data-job='2'] .job-text")
    assert "added 28" in text and "failed 0" in text
    width = page.eval_on_selector(".job[data-job='2'] .progress-bar", "e => e.style.width")
    assert width == "100%"
    shot(page, "jobs")
    page.goto(server.url + "/#/")
    page.wait_for_function("document.querySelectorAll('.card').length === 35")


def test_a_refused_scan_shows_why(catalog, serve, page, tmp_path: Path) -> None:
    """A folder outside the catalog's roots and the allowed folders: the form shows the service's one-line reason."""
    _lib, cat, cache = catalog
    outside = tmp_path / "someone-else"
    outside.mkdir()
    server = serve(cat, cache)
    dry_run_scan(page, server.url, outside)
    page.wait_for_selector("#jobs-error:has-text('not a root of this catalog')")
    text = page.inner_text("#jobs-error")
    assert text.startswith(str(outside)) and "--allow-root" in text and f"mediaidx scan {outside}" in text
    assert page.locator(".job").count() == 0


def test_a_scan_from_blender_shows_on_the_jobs_page(catalog, serve, page, tmp_path: Path) -> None:
    _lib, cat, cache = catalog
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for i in range(8):
        synth.make_image(incoming / f"still_{i:02d}.png", width=40 + i, height=30)
    server = serve(cat, cache, ["--allow-root", str(incoming)])
    page.goto(server.url + "/#/jobs")
    page.wait_for_selector("#no-jobs")
    blender = BridgeClient(server.endpoint, name="comp-station", heartbeat_s=0.2, dead_after_s=2.0).start()
    try:
        assert blender.wait(lambda: blender.state == "connected", 10), blender.last_error
        job = blender.call("scan", {"roots": [str(incoming)], "thumbs": False})["job"]
        row = f".job[data-job='{job}']"
        page.wait_for_selector(f"{row}[data-state='done']", timeout=30_000)  # found by the page's poll
        assert page.inner_text(f"{row} .job-origin") == "from comp-station"
        # The list has no results: the row fetches its job's result once it sees it finished.
        page.wait_for_selector(f"{row} .job-text:has-text('added 8')", timeout=10_000)
        assert page.locator("#no-jobs").count() == 0
    finally:
        blender.stop()


def test_statistics_render_charts(catalog, serve, page) -> None:
    _lib, cat, cache = catalog
    server = serve(cat, cache)
    page.goto(server.url + "/#/stats")
    page.wait_for_selector("#chart-kind")
    assert page.locator("#chart-kind rect.bar").count() == 3
    assert page.locator("#chart-codec rect.bar").count() >= 1
    assert page.locator("#chart-resolution rect.bar").count() >= 1
    assert page.locator("#chart-camera rect.bar").count() == 2
    assert page.locator("#chart-month rect.bar").count() == 1
    assert page.locator("#chart-storage rect.bar").count() == 3
    assert "7" in page.inner_text("#stats-numbers")
    shot(page, "stats")


def test_send_to_blender(catalog, serve, page) -> None:
    _lib, cat, cache = catalog
    server = serve(cat, cache)
    blender = BridgeClient(server.endpoint, name="lighting-02", heartbeat_s=0.2, dead_after_s=2.0).start()
    try:
        assert blender.wait(lambda: blender.state == "connected", 10)
        got: list[dict] = []
        blender.on("shots", lambda data, msg: got.append(data))
        with server.http() as h:
            aid = h.get("/api/assets", params={"q": "B001_C001"}).json()["results"][0]["id"]
        page.goto(f"{server.url}/#/asset/{aid}")
        page.wait_for_selector("#send-button")
        page.select_option("#send-mode", "plane")
        page.click("#send-button")
        page.wait_for_selector("#send .saved:has-text('sent to lighting-02')")
        assert blender.wait(lambda: got, 10)
        assert got[0]["shots"][0]["asset"]["id"] == aid and got[0]["shots"][0]["mode"] == "plane"
        assert "Blender: 1" in page.inner_text("#sessions-badge")
    finally:
        blender.stop()


def test_token_is_asked_once(catalog, serve, page) -> None:
    _lib, cat, cache = catalog
    server = serve(cat, cache, env={**os.environ, "MEDIAIDX_TOKEN": TOKEN})
    page.goto(server.url + "/")
    page.wait_for_selector("#login[open]")
    page.fill("#login-token", "not-the-token-at-all")
    page.click("#login button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])")
    page.fill("#login-token", TOKEN)
    page.click("#login button[type=submit]")
    page.locator(".card").first.wait_for()
    assert page.locator(".card").count() == 7
    page.reload()  # the cookie: not asked again
    page.locator(".card").first.wait_for()
    assert not page.locator("#login[open]").count()


def test_phone_layout(catalog, serve, browser) -> None:
    _lib, cat, cache = catalog
    server = serve(cat, cache)
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    try:
        page = ctx.new_page()
        page.goto(server.url + "/")
        page.locator(".card").first.wait_for()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(page, "library-phone", full=False)
        page.locator(".card").first.click()
        page.wait_for_selector("#asset-title")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        ctx.close()
