"""Who may talk to the HTTP service: loopback by default, a bearer token (or its cookie) everywhere else.

Checks run in one ASGI middleware, before routing, so no endpoint can forget them:

- with a token configured, every request except the dashboard's static shell and ``POST /api/login`` must
  carry it (``Authorization: Bearer``, or the cookie the login sets, named after a hash of the token: see
  `cookie_name`); compared with ``hmac.compare_digest``;
- without a token (loopback only), the ``Host`` header must name a loopback host, so a web page cannot
  reach the service through DNS rebinding;
- a state-changing request whose ``Origin`` is another site is refused (no CSRF through a form post);
- no CORS headers are ever sent, so other origins cannot read answers;
- no answer may be framed by another page (``X-Frame-Options: DENY``; the dashboard also says
  ``frame-ancestors 'none'`` in its Content-Security-Policy), so its buttons cannot be clickjacked.

The token is never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import UsageError

COOKIE = "mediaidx_token"  # the prefix of every service's cookie name (cookie_name)
PUBLIC_PATHS = ("/", "/index.html", "/favicon.ico", "/api/login", "/api/logout")
PUBLIC_PREFIXES = ("/static/",)
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MAX_BODY = 4 << 20  # JSON bodies: a workflow or 500 asset ids fit many times over


def host_is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost are loopback; anything else (0.0.0.0, names, LAN addresses) is exposed."""
    h = host.strip().strip("[]").lower()
    if h in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token (called before anything binds)."""
    if token is not None and not re.fullmatch(r"[A-Za-z0-9._~+/=-]{16,512}", token):
        raise UsageError("the HTTP token must be 16 to 512 letters, digits or ._~+/=- (make one with "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`)")
    if not host_is_loopback(host) and not token:
        raise UsageError(
            f"refusing to serve HTTP on {host} without a token: pass --token (or set MEDIAIDX_TOKEN), "
            "or serve on 127.0.0.1")


def token_matches(given: str | None, token: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


def _cookie(scope: dict[str, Any], name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            # Set-Cookie quotes a value with '/' or '=' (a base64 token): the browser sends the quotes back.
            # A token never holds '"' or '\\', so dropping the quotes is the whole unquoting.
            return v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v
    return None


def cookie_name(token: str) -> str:
    """The login cookie's name for the service with this token: ``mediaidx_token_`` + 12 hex of its SHA-256.

    Browsers scope cookies by host, never by port, so two services on one host (two catalogs on 8765 and 8766)
    sharing one name overwrote each other's login. A name from the token differs whenever the tokens differ,
    whatever the ports (two containers both listening on 8765 behind different host ports; `--http 0`), and
    stays the same across restarts with the same token, so users stay logged in. It gives nothing away: the
    cookie's value is the token itself. Browsers still send every cookie of the host to every service on it;
    a service only ever reads its own.
    """
    return f"{COOKIE}_{hashlib.sha256(token.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def request_token(scope: dict[str, Any], token: str) -> str | None:
    """What the request offers as the token: its Bearer header, else this service's cookie (``cookie_name``)."""
    auth = _header(scope, b"authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
        return None
    return _cookie(scope, cookie_name(token))


def _netloc(origin: str) -> str | None:
    """host[:port] of an Origin header; None for one that does not parse ("http://[::1"), which is refused."""
    try:
        return urlsplit(origin).netloc.lower()
    except ValueError:
        return None


def _hostname(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class SecurityMiddleware:
    """The checks above, as pure ASGI (server-sent event streams pass through untouched)."""

    def __init__(self, app: Any, *, token: str | None, check_host: bool = True) -> None:
        self.app = app
        self.token = token or None
        self.check_host = check_host and not self.token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        host = _header(scope, b"host") or ""
        if self.check_host and not host_is_loopback(_hostname(host)):
            await _deny(send, 403, "forbidden", "this service answers only to loopback host names")
            return
        origin = _header(scope, b"origin")
        unsafe = scope.get("method", "GET") not in SAFE_METHODS
        if unsafe and origin and _netloc(origin) != host.lower():  # "null" is cross-site too
            await _deny(send, 403, "forbidden", "cross-site requests are not allowed")
            return
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if self.token and not public and not token_matches(request_token(scope, self.token), self.token):
            await _deny(send, 401, "unauthorized", "a valid token is required (Authorization: Bearer TOKEN)",
                        {"www-authenticate": "Bearer"})
            return
        length = _header(scope, b"content-length")
        if length is not None and (not (length.isascii() and length.isdigit()) or len(length) > 12 or int(length) > MAX_BODY):
            await _deny(send, 413, "bad_request", f"request bodies are limited to {MAX_BODY} bytes")
            return
        over = [False]  # set by _limited: the answer becomes the same 413 a too large Content-Length gets
        await self.app(scope, _limited(receive, over), _unframeable(_too_large(send, over)))


def _unframeable(send: Any) -> Any:
    """No page of another site may frame ours: without a token (loopback) the framed dashboard's own requests
    pass every check above, so a click on a disguised "Scan" or "Run" button would change the catalog."""

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), (b"x-frame-options", b"DENY")]}
        await send(message)

    return wrapped


def _limited(receive: Any, over: list[bool]) -> Any:
    """Stop reading a (chunked) body past MAX_BODY: the app sees a disconnect instead of filling memory."""
    seen = 0

    async def wrapped() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                over[0] = True
                return {"type": "http.disconnect"}
        return message

    return wrapped


def _too_large(send: Any, over: list[bool]) -> Any:
    """After a chunked body ran past MAX_BODY the app answers 400 ("error parsing the body"): say why instead."""
    replaced = False

    async def wrapped(message: dict[str, Any]) -> None:
        nonlocal replaced
        if message["type"] == "http.response.start" and over[0]:
            replaced = True
            await _deny(send, 413, "bad_request", f"request bodies are limited to {MAX_BODY} bytes")
        elif not replaced:
            await send(message)

    return wrapped


async def _deny(send: Any, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"x-frame-options", b"DENY")]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
