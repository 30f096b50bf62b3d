"""Assets: the grid's paged search, one asset with its probe, and the user's ratings, tags and notes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from ...catalog import search as search_mod
from ...catalog import usermeta
from ...errors import UsageError
from ...indexer import ChangeResult
from ..deps import AssetId, asset_json, ctx
from ..models import AssetDetail, AssetPage, ChangeOut, NoteIn, RatingIn, TagsIn

router = APIRouter(prefix="/api/assets", tags=["assets"])

COUNT_CAP = 10_000  # totals stop counting here ("10,000+"): counting a million matches is not worth the wait
Sort = Literal["relevance", "added", "captured", "name", "duration", "size", "rating", "updated"]
Status = Literal["ok", "unprobed", "failed", "missing"]
Kind = Literal["video", "audio", "image"]
Text = Annotated[str | None, Query(max_length=200)]
Seconds = Annotated[float | None, Query(ge=0, le=1e9, allow_inf_nan=False)]


@router.get("", response_model=AssetPage, summary="Search and list assets (the dashboard grid)")
def list_assets(
    request: Request,
    q: Annotated[str | None, Query(max_length=1000, description='words, "phrases", -exclusions')] = None,
    kind: Kind | None = None,
    codec: Text = None,
    resolution: Annotated[str | None, Query(max_length=20, description="8k, 6k, 4k, 2k, 1080p, 720p, sd or WxH")]
    = None,
    min_duration: Seconds = None,
    max_duration: Seconds = None,
    has_audio: bool | None = None,
    date_from: Annotated[str | None, Query(max_length=10, description="YYYY[-MM[-DD]]")] = None,
    date_to: Annotated[str | None, Query(max_length=10, description="YYYY[-MM[-DD]]")] = None,
    camera: Text = None,
    tag: Annotated[list[str] | None, Query(max_length=20, description="has every one of these tags")] = None,
    min_rating: Annotated[int | None, Query(ge=0, le=5)] = None,
    status: Annotated[Status | None, Query(description="default: everything but missing")] = None,
    root: Annotated[str | None, Query(max_length=4096)] = None,
    sort: Sort = "added",
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    count: Annotated[bool, Query(description="count the matches (false saves time when paging on)")] = True,
) -> dict:
    ix = ctx(request).indexer()
    flt = search_mod.SearchFilters.from_kwargs(
        kind=kind, codec=codec, resolution=resolution, min_duration=min_duration, max_duration=max_duration,
        has_audio=has_audio, date_from=date_from, date_to=date_to, camera=camera, tags=tag or [],
        min_rating=min_rating, status=status, root=root, sort=sort, descending=order == "desc", limit=limit,
        offset=offset)
    conn = ix._read_db().conn
    text = q if q and q.strip() else None
    results = search_mod.search(conn, text, flt, ix.thumbs_dir)
    if count:
        total = search_mod.count(conn, text, flt, cap=COUNT_CAP + 1)
    else:
        total = offset + len(results) + (1 if len(results) == limit else 0)
    return {"total": min(total, COUNT_CAP), "total_exact": count and total <= COUNT_CAP, "offset": offset,
            "limit": limit, "results": [asset_json(a) for a in results]}


@router.get("/{asset_id}", response_model=AssetDetail, summary="One asset with its full probe")
def get_asset(request: Request, asset_id: AssetId) -> dict:
    return asset_json(ctx(request).indexer().get(asset_id), probe=True)


def _changed(request: Request, asset_id: int, result: ChangeResult) -> dict:
    d = result.to_dict()
    d["asset"] = None if result.dry_run else asset_json(ctx(request).indexer().get(asset_id))
    return d


@router.put("/{asset_id}/rating", response_model=ChangeOut, summary="Set or clear the rating (0-5)")
def set_rating(request: Request, asset_id: AssetId, body: RatingIn) -> dict:
    return _changed(request, asset_id, ctx(request).indexer().rate(asset_id, body.rating, dry_run=body.dry_run))


@router.put("/{asset_id}/note", response_model=ChangeOut, summary="Replace or clear the note")
def set_note(request: Request, asset_id: AssetId, body: NoteIn) -> dict:
    return _changed(request, asset_id, ctx(request).indexer().note(asset_id, body.note, dry_run=body.dry_run))


@router.post("/{asset_id}/tags", response_model=ChangeOut, summary="Add and/or remove tags")
def change_tags(request: Request, asset_id: AssetId, body: TagsIn) -> dict:
    ix = ctx(request).indexer()
    plan = []
    if not body.add and not body.remove:
        ix.get(asset_id)  # 404 for an unknown asset even when there is nothing to do
    # Both lists checked before either is applied: a bad tag in `remove` answered 400 after `add` was written.
    add = usermeta.clean_tags(body.add) if body.add else []
    remove = usermeta.clean_tags(body.remove) if body.remove else []
    if both := {t.casefold() for t in add} & {t.casefold() for t in remove}:
        # applied in turn, the dry run (planned on the state before) and the real run would disagree
        raise UsageError(f"a tag cannot be added and removed in one request: {', '.join(sorted(both))}")
    if body.add:
        plan += ix.tag(asset_id, body.add, dry_run=body.dry_run).plan
    if body.remove:
        plan += ix.tag(asset_id, body.remove, remove=True, dry_run=body.dry_run).plan
    return _changed(request, asset_id, ChangeResult(body.dry_run, plan))
