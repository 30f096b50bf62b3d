"""Two token-protected services on one host keep separate logins.

Browsers scope cookies by host, not by port: with one cookie name for every service, logging into the catalog
on one port overwrote the login of the catalog on another port, and each service was sent the other's token.
The tests share one cookie jar between two real `mediaidx serve` processes, as a browser does.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

TOKEN_A = "token-of-catalog-a-0123456789"
TOKEN_B = "token-of-catalog-b-9876543210"
CHROMIUM = Path(os.environ.get("MEDIAIDX_CHROMIUM", "/usr/bin/chromium"))


def _two_services(catalog, serve, tmp_path: Path):
    _lib, cat, cache = catalog
    other = tmp_path / "other.sqlite"
    shutil.copy(cat, other)
    a = serve(cat, cache, ["--token", TOKEN_A])
    b = serve(other, cache, ["--token", TOKEN_B])
    assert a.url.rsplit(":", 1)[1] != b.url.rsplit(":", 1)[1]  # same host, two ports
    return a, b


def test_logins_to_two_services_on_one_host_do_not_overwrite_each_other(catalog, serve, tmp_path: Path) -> None:
    a, b = _two_services(catalog, serve, tmp_path)
    # one client for both: its cookie jar, like a browser's, keys cookies by host and ignores the port
    with httpx.Client(timeout=30) as browser:
        ra = browser.post(f"{a.url}/api/login", json={"token": TOKEN_A})
        assert ra.status_code == 204
        # A's login does not authenticate against B
        assert browser.get(f"{b.url}/api/stats").status_code == 401
        rb = browser.post(f"{b.url}/api/login", json={"token": TOKEN_B})
        assert rb.status_code == 204

        name_a = ra.headers["set-cookie"].split("=", 1)[0]
        name_b = rb.headers["set-cookie"].split("=", 1)[0]
        assert name_a != name_b
        jar = list(browser.cookies.jar)
        assert sorted(c.name for c in jar) == sorted([name_a, name_b])  # B's login did not replace A's
        assert {c.domain.lstrip(".") for c in jar} == {"127.0.0.1"}  # one host, two cookies
        for r in (ra, rb):  # the flags are kept
            cookie = r.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie

        # both logins hold: each service reads its own cookie among those the browser sends it
        assert browser.get(f"{a.url}/api/stats").status_code == 200
        assert browser.get(f"{b.url}/api/stats").status_code == 200

        # logging out of B leaves A logged in
        out = browser.post(f"{b.url}/api/logout")
        assert out.status_code == 204 and out.headers["set-cookie"].startswith(name_b + "=")
        assert [c.name for c in browser.cookies.jar] == [name_a]
        assert browser.get(f"{b.url}/api/stats").status_code == 401
        assert browser.get(f"{a.url}/api/stats").status_code == 200

    with b.http() as hb:  # the Bearer header still works; another service's token under B's name does not
        assert hb.get("/api/stats", headers={"Authorization": f"Bearer {TOKEN_B}"}).status_code == 200
        hb.cookies.set(name_b, TOKEN_A)
        assert hb.get("/api/stats").status_code == 401
    assert TOKEN_A not in a.stop() and TOKEN_B not in b.stop()


def test_the_login_cookie_survives_a_restart_on_the_same_port(catalog, serve, tmp_path: Path) -> None:
    """The name depends only on the token (not on the process or anything else that changes at a restart), so a
    restart with the same token keeps users logged in."""
    _lib, cat, cache = catalog
    first = serve(cat, cache, ["--token", TOKEN_A])
    port = first.url.rsplit(":", 1)[1]
    with first.http() as h:
        assert h.post("/api/login", json={"token": TOKEN_A}).status_code == 204
        jar = httpx.Cookies(h.cookies)
    first.stop()
    again = serve(cat, cache, ["--token", TOKEN_A, "--http", f"127.0.0.1:{port}"])
    assert again.url == first.url
    with again.http(cookies=jar) as h:
        assert h.get("/api/stats").status_code == 200


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} (apt install chromium)")
def test_one_browser_stays_logged_into_both_dashboards(catalog, serve, tmp_path: Path) -> None:
    """What users saw: logging into the second dashboard made the first ask for its token again."""
    sync_api = pytest.importorskip("playwright.sync_api")
    a, b = _two_services(catalog, serve, tmp_path)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            ctx = browser.new_context()  # one cookie store for both tabs, as in a real browser
            tab_a, tab_b = ctx.new_page(), ctx.new_page()
            for tab, service, token in ((tab_a, a, TOKEN_A), (tab_b, b, TOKEN_B)):
                tab.set_default_timeout(20_000)
                tab.goto(service.url + "/")
                tab.wait_for_selector("#login[open]")
                tab.fill("#login-token", token)
                tab.click("#login button[type=submit]")
                tab.locator(".card").first.wait_for()
            for tab in (tab_a, tab_b):
                tab.reload()
                tab.wait_for_selector(".card, #login[open]")  # the library, or the token asked again
                assert not tab.locator("#login[open]").count(), f"{tab.url} asked for its token again"
            assert len({c["name"] for c in ctx.cookies()}) == 2
        finally:
            browser.close()


def test_two_services_listening_on_the_same_port_keep_separate_logins(catalog, tmp_path: Path) -> None:
    """Two containers both listening on 8765, published on other host ports (or two catalogs behind one proxy):
    a name from the port was the same for both, so one login overwrote the other in the browser."""
    from fastapi.testclient import TestClient

    from bridge.web import WebContext, create_app

    _lib, cat, cache = catalog
    apps = [create_app(WebContext(cat, cache, token=t)) for t in (TOKEN_A, TOKEN_B)]
    with TestClient(apps[0], base_url="http://127.0.0.1:8765") as a, \
            TestClient(apps[1], base_url="http://127.0.0.1:8765") as b:
        assert a.post("/api/login", json={"token": TOKEN_A}).status_code == 204
        assert b.post("/api/login", json={"token": TOKEN_B}).status_code == 204
        # one browser: both services' cookies in one jar, the later login last
        for cookie in [*a.cookies.jar, *b.cookies.jar]:
            a.cookies.jar.set_cookie(cookie)
            b.cookies.jar.set_cookie(cookie)
        assert len(a.cookies.jar) == len(b.cookies.jar) == 2
        assert a.get("/api/stats").status_code == 200 and b.get("/api/stats").status_code == 200
        for c in (a, b):
            c.app.state.ctx.jobs.close()


def test_logout_also_deletes_older_names_holding_this_services_token(catalog, tmp_path: Path) -> None:
    """Earlier builds kept the login under ``mediaidx_token`` and then ``mediaidx_token_<port>``; a browser may
    still hold this service's token there, which logout must forget too (it would keep the login for 30 days).
    Another service's cookie under such a name (its token) is left alone."""
    from fastapi.testclient import TestClient

    from bridge.web import WebContext, create_app
    from bridge.web.auth import cookie_name

    _lib, cat, cache = catalog
    with TestClient(create_app(WebContext(cat, cache, token=TOKEN_A)), base_url="http://127.0.0.1:8765") as a:
        assert a.post("/api/login", json={"token": TOKEN_A}).status_code == 204
        a.cookies.set("mediaidx_token", TOKEN_A, domain="127.0.0.1")
        a.cookies.set("mediaidx_token_8765", TOKEN_A, domain="127.0.0.1")
        a.cookies.set("mediaidx_token_8766", TOKEN_B, domain="127.0.0.1")  # the service on 8766's login, from that older build
        a.cookies.set(cookie_name(TOKEN_B), TOKEN_B, domain="127.0.0.1")
        out = a.post("/api/logout")
        assert out.status_code == 204
        deleted = {h.split("=", 1)[0] for h in out.headers.get_list("set-cookie")}
        assert deleted == {cookie_name(TOKEN_A), "mediaidx_token", "mediaidx_token_8765"}
        assert sorted(c.name for c in a.cookies.jar) == sorted(["mediaidx_token_8766", cookie_name(TOKEN_B)])
        a.app.state.ctx.jobs.close()
