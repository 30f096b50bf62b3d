"""The library as a whole: statistics for the charts, the roots, and a health check."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ... import __version__
from ..deps import ctx
from ..models import HealthOut, RootOut

router = APIRouter(prefix="/api", tags=["library"])


@router.get("/stats", summary="Library statistics (as `mediaidx stats --json`)")
def stats(request: Request) -> dict:
    return ctx(request).indexer().stats().to_dict()


@router.get("/roots", response_model=list[RootOut], summary="The scan roots the catalog knows")
def roots(request: Request) -> list[dict]:
    return ctx(request).indexer().roots()


@router.get("/health", response_model=HealthOut, summary="Version, and whether a token and the bridge are on")
def health(request: Request) -> dict:
    c = ctx(request)
    return {"version": __version__, "auth": bool(c.token), "bridge": c.bridge is not None}
