"""The dashboard's login: it asks for the token once and the service keeps it in an HttpOnly cookie, named
after a hash of the token (``auth.cookie_name``) so two services on one host keep separate logins."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..auth import cookie_name, token_matches
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


@router.post("/logout", status_code=204, response_class=Response, summary="Forget the token cookie")
def logout(request: Request) -> Response:
    resp = Response(status_code=204)
    token = ctx(request).token
    if token:
        resp.delete_cookie(cookie_name(token), httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return resp
