"""Request and response bodies: they make the OpenAPI document (the API's reference) and validate input."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_ID = 2**63 - 1
Mode = Literal["clip", "camera-bg", "strip", "plane"]


class ErrorBody(BaseModel):
    code: str = Field(description="bad_request, unauthorized, forbidden, not_found, conflict, unavailable, internal")
    message: str
    job: int | None = Field(None, description="on a 409 for a scan: the id of the scan job that runs")


class ErrorOut(BaseModel):
    error: ErrorBody


class AssetOut(BaseModel):
    """An asset as the catalog sees it; files and images are fetched by id through the *_url links."""

    id: int
    path: str
    root: str
    relpath: str
    name: str
    kind: str
    ext: str
    size: int
    mtime: float
    status: str
    error: str | None = None
    container: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    fps: str | None = None
    has_audio: bool | None = None
    audio_silent: bool | None = None
    captured_at: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    rating: int | None = None
    note: str | None = None
    tags: list[str] = []
    fingerprint: str | None = None
    added_at: float = 0.0
    updated_at: float = 0.0
    missing_since: float | None = None
    has_thumb: bool = False
    thumb_url: str
    hero_url: str
    file_url: str


class AssetDetail(AssetOut):
    probe: dict[str, Any] | None = None
    summary: dict[str, Any] = Field(default_factory=dict, description="the probe in readable form")


class AssetPage(BaseModel):
    total: int = Field(description="matches, counted up to 10,000 (see total_exact)")
    total_exact: bool
    offset: int
    limit: int
    results: list[AssetOut]


class PlanItemOut(BaseModel):
    action: str
    path: str
    id: int | None = None
    source: str | None = None
    kind: str | None = None
    reason: str | None = None


class ChangeOut(BaseModel):
    dry_run: bool
    plan: list[PlanItemOut]
    asset: AssetOut | None = Field(None, description="the asset after the change (absent in a dry run)")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RatingIn(_Body):
    rating: int | None = Field(..., ge=0, le=5, description="0 to 5, null clears")
    dry_run: bool = False


class NoteIn(_Body):
    note: str | None = Field(..., max_length=100_000, description="null or empty clears")
    dry_run: bool = False


class TagsIn(_Body):
    add: list[str] = Field(default_factory=list, max_length=200)
    remove: list[str] = Field(default_factory=list, max_length=200)
    dry_run: bool = False


class ScanIn(_Body):
    roots: list[str] | None = Field(None, max_length=100, description="folders; default every known root")
    probe: bool = True
    thumbs: bool = True
    retry_failed: bool = False
    dry_run: bool = Field(True, description="plan only (the default): pass false to change the catalog")


class WorkflowIn(_Body):
    workflow: dict[str, Any] | list[Any] = Field(
        ..., description='one step, or {"workflow": [steps]}, as for `mediaidx run`')
    dry_run: bool = Field(True, description="plan only (the default): pass false to run it")


class JobOut(BaseModel):
    id: int
    kind: str
    state: str
    params: dict[str, Any]
    progress: dict[str, Any]
    error: str | None = None
    started_at: float
    finished_at: float | None = None
    cancelling: bool = False
    origin: Literal["web", "bridge"] = Field("web", description="started from the web, or over ZeroMQ")
    session: str | None = Field(None, description="a bridge job: the name of the session that started it")
    result: Any = None


class SessionOut(BaseModel):
    name: str
    kind: str
    connected_at: float
    last_seen: float
    pid: int | str | None = None
    blender: int | str | None = None
    host: int | str | None = None


class SessionsOut(BaseModel):
    bridge: bool = Field(description="whether the ZeroMQ service runs in this process")
    sessions: list[SessionOut]


class PushIn(_Body):
    assets: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(..., min_length=1, max_length=500)
    mode: Mode = "clip"


class PushOut(BaseModel):
    delivered: int
    to: str


class LoginIn(_Body):
    token: str = Field(..., max_length=4096)


class RootOut(BaseModel):
    url: str
    last_scan_at: float | None = None


class HealthOut(BaseModel):
    version: str
    auth: bool
    bridge: bool
