"""Plain dataclasses the Python API, the CLI and the services hand around (``to_dict`` for JSON)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class _Dict:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass
class Asset(_Dict):
    """One catalogued file. ``id`` is stable across changes, moves and renames."""

    id: int
    path: str                 # what a user sees: root + relative path (undecodable bytes as \xNN)
    root: str
    relpath: str
    name: str
    kind: str
    ext: str
    size: int
    mtime: float
    status: str               # ok | unprobed | failed | missing
    error: str | None = None
    container: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    fps: str | None = None    # exact rational, "24000/1001"
    has_audio: bool | None = None
    audio_silent: bool | None = None
    captured_at: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    thumb: str | None = None  # absolute path of the thumbnail, when there is one
    rating: int | None = None
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    added_at: float = 0.0
    updated_at: float = 0.0
    missing_since: float | None = None
    probe: dict[str, Any] | None = None  # the full probe; filled by ``show``/``get`` only


@dataclass
class ScanIssue(_Dict):
    path: str
    reason: str


@dataclass
class PlanItem(_Dict):
    """One thing a scan did or, in a dry run, would do."""

    action: str               # add | change | restore | move | missing | fail | write | adopt
    path: str
    id: int | None = None
    source: str | None = None  # the old path of a move
    kind: str | None = None
    reason: str | None = None


@dataclass
class ScanSummary(_Dict):
    roots: list[str]
    dry_run: bool = False
    added: int = 0
    changed: int = 0
    moved: int = 0
    missing: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0           # entries not indexed (unreadable, symlinks not followed, unreadable folders)
    issues: list[ScanIssue] = field(default_factory=list)
    issue_count: int = 0
    plan: list[PlanItem] = field(default_factory=list)
    complete: bool = True      # False when cancelled or a root went away mid-scan
    elapsed: float = 0.0

    MAX_ISSUES = 1000          # the first ones are kept; ``issue_count`` has them all

    def add_issue(self, path: str, reason: str) -> None:
        self.issue_count += 1
        if len(self.issues) < self.MAX_ISSUES:
            self.issues.append(ScanIssue(path, reason))

    @property
    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("added", "changed", "moved", "missing", "unchanged", "failed")}


@dataclass
class Stats(_Dict):
    assets: int = 0
    present: int = 0
    total_size: int = 0
    total_duration: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    by_container: dict[str, int] = field(default_factory=dict)
    by_video_codec: dict[str, int] = field(default_factory=dict)
    by_audio_codec: dict[str, int] = field(default_factory=dict)
    by_resolution: dict[str, int] = field(default_factory=dict)
    by_camera: dict[str, int] = field(default_factory=dict)
    by_month: dict[str, int] = field(default_factory=dict)
    size_by_kind: dict[str, int] = field(default_factory=dict)
    roots: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, int] = field(default_factory=dict)
    rated: int = 0
