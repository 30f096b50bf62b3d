"""The dashboard's login: it asks for the token once and the service keeps it in an HttpOnly cookie, named
after a hash of the token (``auth.cookie_name``) so two services on one host keep separate logins."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response

from ..auth import COOKIE, cookie_name, token_matches
from ..deps import ctx
from ..models import LoginIn

router = APIRouter(prefix="/api", tags=["auth"])


class Unauthorized(Exception):
    """A wrong token (HTTP 401)."""


@router.post("/login", status_code=204, response_class=Response, summary="Check a token and store it in a cookie")
def login(request: Request, body: LoginIn) -> Response:
    token = ctx(request).token
    if token and not token_matches(body.token, token):
        raise Unauthorized("wrong token")
    resp = Response(status_code=204)
    if token:
        secure = request.url.scheme == "https"
        resp.set_cookie(cookie_name(token), token, httponly=True, samesite="strict", secure=secure, max_age=30 * 86400)
    return resp


_LEGACY_NAME = re.compile(rf"{COOKIE}(_\d+)?")  # earlier builds' names: one for all, then one per port


@router.post("/logout", status_code=204, response_class=Response, summary="Forget the token cookie")
def logout(request: Request) -> Response:
    """Deletes this service's cookie, and the names earlier builds kept the same token under (``mediaidx_token``,
    ``mediaidx_token_<port>``) when they hold this service's token: left there, they would keep the login for up
    to 30 days. A cookie under such a name that holds another service's token is that service's and stays."""
    resp = Response(status_code=204)
    token = ctx(request).token
    if token:
        names = [cookie_name(token)] + [n for n, v in request.cookies.items()
                                        if _LEGACY_NAME.fullmatch(n) and token_matches(v, token)]
        for name in names:
            resp.delete_cookie(name, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return resp
