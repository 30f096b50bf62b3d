"""The dashboard's login: it asks for the token once and the service keeps it in an HttpOnly cookie, named
after the service's port (``auth.cookie_name``) so two services on one host keep separate logins."""

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
        name = cookie_name(request.scope)
        resp.set_cookie(name, token, httponly=True, samesite="strict", secure=secure, max_age=30 * 86400)
    return resp


@router.post("/logout", status_code=204, response_class=Response, summary="Forget the token cookie")
def logout(request: Request) -> Response:
    resp = Response(status_code=204)
    secure, name = request.url.scheme == "https", cookie_name(request.scope)
    resp.delete_cookie(name, httponly=True, samesite="strict", secure=secure)
    return resp
