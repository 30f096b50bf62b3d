"""Small helpers the routers share: the request's context and asset-to-JSON conversion."""

from __future__ import annotations

import dataclasses
import os
from typing import Annotated, Any

from fastapi import Path as PathParam
from fastapi import Request

from ..models import Asset
from .context import WebContext
from .models import MAX_ID

AssetId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="asset id")]


def ctx(request: Request) -> WebContext:
    return request.app.state.ctx


FIELDS = tuple(f.name for f in dataclasses.fields(Asset) if f.name not in ("thumb", "probe"))


def asset_json(a: Asset, *, probe: bool = False) -> dict[str, Any]:
    """The public form: no server-side cache paths, links by id instead. (Not ``to_dict``: ``asdict``'s deep
    copy is most of the time of a grid page.)"""
    d = {f: getattr(a, f) for f in FIELDS}
    d["tags"] = list(a.tags)
    p = a.probe
    d["has_thumb"] = bool(a.thumb and os.path.isfile(a.thumb))
    base = f"/api/assets/{a.id}"
    d["thumb_url"] = f"{base}/thumbnail"
    d["hero_url"] = f"{base}/hero"
    d["file_url"] = f"{base}/file"
    if probe:
        from ..probe import summarize

        d["probe"] = p
        d["summary"] = summarize(p) if p else {}
    return d
