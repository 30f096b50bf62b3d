"""The FastAPI application: routers, the security middleware, JSON errors, and the dashboard's static files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import MediaIdxError, NotFoundError, RootUnavailableError
from ..service.security import Forbidden
from .auth import SecurityMiddleware
from .context import WebContext
from .jobs import Busy
from .models import ErrorOut
from .routes import assets, jobs, library, login, media, sessions

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
# The dashboard is never shown inside another page (its buttons could be clickjacked), embeds no plugin and
# keeps its own base URL.
CSP = "frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "bad_request",
              409: "conflict", 413: "bad_request", 415: "bad_request", 422: "bad_request", 503: "unavailable"}


MAX_MESSAGE = 2000  # messages quote what was sent (a path, a workflow value): never a megabyte of it back


def short(message: str) -> str:
    """The message cut to MAX_MESSAGE characters, so an error stays one readable line whatever was sent."""
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 1] + "…"


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": HTTP_CODES.get(status, "internal"), "message": short(message)},
                         **extra}, status_code=status)


def _status_for(exc: MediaIdxError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Busy):
        return 409
    if isinstance(exc, sessions.Unavailable | RootUnavailableError):  # a storage down is not the client's fault
        return 503
    return 400


def create_app(ctx: WebContext) -> FastAPI:
    """One app per service; ``ctx`` says which catalog, which token, and which bridge it serves."""
    responses: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorOut, "description": "bad request"}, 404: {"model": ErrorOut, "description": "not found"}}
    if ctx.token:
        responses[401] = {"model": ErrorOut, "description": "missing or wrong token"}
    app = FastAPI(title="mediaidx", version=__version__, responses=responses,
                  description="The mediaidx catalog over HTTP: assets, images, statistics, scan and workflow jobs, "
                              "ratings, tags and notes, Blender sessions. Errors are `{error: {code, message}}`.")
    app.state.ctx = ctx
    for r in (assets.router, media.router, library.router, jobs.router, sessions.router, login.router):
        app.include_router(r)

    @app.exception_handler(MediaIdxError)
    async def _mediaidx_error(request: Request, exc: MediaIdxError) -> JSONResponse:
        if isinstance(exc, Busy) and exc.job is not None:  # the client can follow or cancel the running job
            return JSONResponse({"error": {"code": "conflict", "message": short(str(exc)), "job": exc.job}},
                                status_code=409)
        return error(_status_for(exc), str(exc))

    @app.exception_handler(login.Unauthorized)
    async def _unauthorized(request: Request, exc: login.Unauthorized) -> JSONResponse:
        return error(401, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "request"
            problems.append(f"{where}: {e.get('msg', 'invalid')}")
        return error(422, "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(UnicodeError)
    async def _unicode(request: Request, exc: UnicodeError) -> JSONResponse:
        return error(400, "text must be valid Unicode")

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        return error(400, "a number is out of range")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
        return error(500, f"internal error ({type(exc).__name__}); the service log has the details")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityMiddleware, token=ctx.token, check_host=ctx.check_host)
    return app
