"""Images and files, only ever by asset id: the poster thumbnail, the hero image, and the file itself
(checked to lie inside a catalog root, symlinks resolved)."""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.responses import RangeNotSatisfiable

from ...catalog import search as search_mod
from ...errors import MediaIdxError, NotFoundError
from ...thumbs.ondemand import poster_on_demand, served_local_file
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


def _position(digits: str) -> int | None:
    """A byte position; past 18 digits it is beyond any file (and int() of thousands of digits raises)."""
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else 10**18


class MediaFile(FileResponse):
    """A FileResponse whose ranges follow RFC 9110 (section 14): a Range header that is malformed, in another
    unit or holds an invalid range (last before first) is ignored, so the whole file comes back (200), not a
    400; ranges that start past the end are dropped and 416 answers only when none is left, with the JSON error
    body every other error has."""

    _RANGE = re.compile(r"([0-9]*)[ \t]*-[ \t]*([0-9]*)")

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        units, sep, spec = http_range.partition("=")
        if not sep or units.strip().lower() != "bytes" or spec.count(",") >= cls.max_ranges:
            return []  # ignored: the whole file
        ranges: list[tuple[int, int]] = []
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue  # empty list elements are allowed
            m = cls._RANGE.fullmatch(part)
            if not m or not (m[1] or m[2]):
                return []  # one invalid range-spec: the whole header is ignored
            first, last = (_position(x) for x in (m[1], m[2]))
            if first is not None and last is not None and last < first:
                return []
            if first is not None:
                start, end = first, file_size if last is None else min(last + 1, file_size)
            elif file_size == 0:
                return []  # a suffix of an empty file: the (empty) whole file
            else:
                assert last is not None
                start, end = max(file_size - last, 0), file_size
            if start < end:
                ranges.append((start, end))  # else not satisfiable (starts past the end, or "-0"): dropped
        if not ranges:
            if not any(p.strip() for p in spec.split(",")):
                return []
            raise RangeNotSatisfiable(file_size)
        ranges.sort()
        merged = [ranges[0]]
        for start, end in ranges[1:]:
            if start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        replaced = False

        async def json_416(message: dict[str, Any]) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 416:
                replaced = True
                rng = dict(message["headers"]).get(b"content-range", b"")
                body = json.dumps({"error": {"code": "bad_request", "message":
                                   "the requested range is not inside the file"}}).encode()
                message = {**message, "headers": [(b"content-type", b"application/json"),
                                                  (b"content-length", str(len(body)).encode()),
                                                  (b"content-range", rng)]}
                await send(message)
                await send({"type": "http.response.body", "body": body})
                return
            if not replaced:
                await send(message)

        await super().__call__(scope, receive, json_416)


def _image(path: Path) -> FileResponse:
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return MediaFile(path, media_type=media, headers=CACHE)


@router.get("/{asset_id}/thumbnail", response_class=FileResponse, responses=IMAGE,
            summary="The poster thumbnail (made on demand)")
def thumbnail(request: Request, asset_id: AssetId) -> FileResponse:
    return _image(poster_on_demand(ctx(request).indexer(), asset_id))


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
    return _image(poster_on_demand(ix, asset_id))


@router.get("/{asset_id}/file", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "the file (ranges)"}},
            summary="The file itself, for previews and downloads (HTTP ranges)")
def file(request: Request, asset_id: AssetId) -> FileResponse:
    ix = ctx(request).indexer()
    url, rel = search_mod.native_path(ix._read_db().conn, asset_id)
    if "://" in url:
        raise NotFoundError("this asset is on remote storage; fetch it through the bridge")
    path = served_local_file(ix, url, rel)
    # The type comes from the catalogued name (what was scanned), never from where a symlink points now,
    # and only media types are served as such.
    catalogued = os.fsdecode(rel.rsplit(b"/", 1)[-1])
    media = mimetypes.guess_type(catalogued)[0] or ""
    if not media.startswith(MEDIA_KINDS):
        media = "application/octet-stream"
    # A non-UTF-8 name (kept as surrogate escapes) cannot go into a header as is.
    shown = catalogued.encode("utf-8", "replace").decode("utf-8")
    return MediaFile(os.fsdecode(path), media_type=media, filename=shown, content_disposition_type="inline",
                     headers=SAFE)


@router.head("/{asset_id}/file", include_in_schema=False)
def file_head(request: Request, asset_id: AssetId) -> FileResponse:
    """HEAD answers as GET does, without the body (curl -I, download managers); not 405."""
    return file(request, asset_id)
