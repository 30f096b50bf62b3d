"""Images and files, only ever by asset id: the poster thumbnail, the hero image, and the file itself
(checked to lie inside a catalog root, symlinks resolved)."""

from __future__ import annotations

import logging
import mimetypes
import os
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from ...catalog import search as search_mod
from ...errors import MediaIdxError, NotFoundError
from ...indexer import MediaIndexer
from ...service.security import Forbidden, contained
from ..deps import AssetId, ctx

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/assets", tags=["media"])

IMAGE = {200: {"content": {"image/jpeg": {}, "image/webp": {}, "image/png": {}}, "description": "the image"}}
# Served bytes are user data: never let a browser run them (a file swapped for an HTML page behind a
# symlink), sniff another type, or embed them in another site's page.
SAFE = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cross-Origin-Resource-Policy": "same-origin"}
CACHE = {"Cache-Control": "private, max-age=3600", **SAFE}
MEDIA_KINDS = ("video/", "audio/", "image/")


def poster(ix: MediaIndexer, asset_id: int) -> Path:
    """The asset's thumbnail, made now when the scan did not make one (as the ZeroMQ `thumbnail` op does)."""
    a = ix.get(asset_id)
    if a.thumb and Path(a.thumb).is_file():
        return Path(a.thumb)
    from ...scan.analyze import Task, analyze

    url, rel = search_mod.native_path(ix._read_db().conn, asset_id)
    out = analyze(Task(url, rel, a.size, a.kind, want_thumb=True, thumbs_dir=str(ix.thumbs_dir)))
    if not out.thumb:
        raise NotFoundError(out.thumb_error or out.error or "no thumbnail for this asset")
    return ix.thumbs_dir / out.thumb


def _image(path: Path) -> FileResponse:
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers=CACHE)


@router.get("/{asset_id}/thumbnail", response_class=FileResponse, responses=IMAGE,
            summary="The poster thumbnail (made on demand)")
def thumbnail(request: Request, asset_id: AssetId) -> FileResponse:
    return _image(poster(ctx(request).indexer(), asset_id))


@router.get("/{asset_id}/hero", response_class=FileResponse, responses=IMAGE,
            summary="The hero image (best frame); the poster when there is none")
def hero(request: Request, asset_id: AssetId) -> FileResponse:
    ix = ctx(request).indexer()
    ix.get(asset_id)  # 404 first
    find = getattr(ix, "hero_image", None)
    if find is not None:
        try:
            path = find(asset_id)
        except MediaIdxError as exc:
            log.info("no hero image for asset %s: %s", asset_id, exc)
            path = None
        except Exception:  # shot analysis is optional: a failure there still shows the poster
            log.warning("hero image lookup failed for asset %s", asset_id, exc_info=True)
            path = None
        if path is not None and Path(path).is_file():
            return _image(Path(path))
    return _image(poster(ix, asset_id))


@router.get("/{asset_id}/file", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "the file (ranges)"}},
            summary="The file itself, for previews and downloads (HTTP ranges)")
def file(request: Request, asset_id: AssetId) -> FileResponse:
    ix = ctx(request).indexer()
    conn = ix._read_db().conn
    url, rel = search_mod.native_path(conn, asset_id)
    if "://" in url:
        raise NotFoundError("this asset is on remote storage; fetch it through the bridge")
    roots = [r["url"] for r in ix.roots() if "://" not in r["url"]]
    try:
        path = contained(os.fsencode(url).rstrip(b"/") + b"/" + rel, roots)
    except FileNotFoundError:
        raise NotFoundError("the file is not there any more") from None
    if not os.path.isfile(path):
        raise NotFoundError("the file is not there any more")
    if not os.access(path, os.R_OK):
        raise Forbidden("the file cannot be read")
    # The type comes from the catalogued name (what was scanned), never from where a symlink points now,
    # and only media types are served as such.
    catalogued = os.fsdecode(rel.rsplit(b"/", 1)[-1])
    media = mimetypes.guess_type(catalogued)[0] or ""
    if not media.startswith(MEDIA_KINDS):
        media = "application/octet-stream"
    # A non-UTF-8 name (kept as surrogate escapes) cannot go into a header as is.
    shown = catalogued.encode("utf-8", "replace").decode("utf-8")
    return FileResponse(os.fsdecode(path), media_type=media, filename=shown, content_disposition_type="inline",
                        headers=SAFE)
