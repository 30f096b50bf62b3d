"""Blender sessions connected to the ZeroMQ bridge in this process, and pushing shots to one of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from ...errors import MediaIdxError
from ..deps import ctx
from ..models import PushIn, PushOut, SessionsOut

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


class Unavailable(MediaIdxError):
    """The ZeroMQ bridge does not run in this process (HTTP 503)."""


@router.get("", response_model=SessionsOut, summary="Connected Blender sessions")
def sessions(request: Request) -> dict:
    bridge = ctx(request).bridge
    return {"bridge": bridge is not None, "sessions": bridge.session_list() if bridge else []}


@router.post("/{name}/push", response_model=PushOut, summary="Send shots to a session, which imports them")
def push(request: Request, name: Annotated[str, Path(min_length=1, max_length=64)], body: PushIn) -> dict:
    c = ctx(request)
    if c.bridge is None:
        raise Unavailable("the Blender bridge is not running in this process (start it with `mediaidx serve`)")
    ix = c.indexer()
    # the asset exactly as the bridge's own `push` op sends it (with its probe), so Blender sees no difference
    shots = [{"mode": body.mode, "asset": ix.get(asset_id).to_dict()} for asset_id in body.assets]
    return c.bridge.deliver_shots(name, shots, sender="web")
