"""sync_album: bring a folder (or a catalog selection) of photos and clips into ``root/category``,
renamed by capture date, copied or linked. Running it again adds only what is new.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProbeError, UsageError
from ..mediatypes import is_ignored_dir, kind_of
from ..models import PlanItem
from .fileops import DISK_FULL, DestinationExists, check_folder_target, hash_file, verified_copy

MODES = ("copy", "link", "hardlink")
DEFAULT_PATTERN = "{date:%Y-%m-%d_%H%M%S}"
CROSS_DEVICE = "cannot hard-link: the file and the album are on different filesystems (use mode copy or link)"


@dataclass
class AlbumReport:
    dry_run: bool
    placed: int = 0
    skipped: int = 0
    failed: int = 0
    not_attempted: int = 0  # files left when the album's disk filled up (or turned read-only) and it stopped
    plan: list[PlanItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if k != "plan" else [p.to_dict() for p in v]) for k, v in self.__dict__.items()}


@dataclass(slots=True)
class AlbumFile:
    source: str
    captured: dt.datetime | None    # from the file's own metadata
    camera: str | None = None


def capture_time(path: str) -> tuple[dt.datetime | None, str | None]:
    """(capture time as the file states it, camera) from the probe; (None, None) when it has none."""
    from ..probe import probe_file, summarize

    try:
        s = summarize(probe_file(path))
    except (ProbeError, OSError):
        return None, None
    value = s.get("captured_at")
    camera = " ".join(x for x in (s.get("camera_make"), s.get("camera_model")) if x) or None
    if not value:
        return None, camera
    try:
        return dt.datetime.fromisoformat(value), camera
    except ValueError:
        return None, camera


def files_in_folder(folder: str | os.PathLike[str], errors: list[PlanItem] | None = None) -> list[AlbumFile]:
    """Media files under ``folder`` (recursively), with their capture times.

    A folder that cannot be listed is never passed over in silence: it goes into ``errors`` as a "fail"
    plan item, or without that list raises UsageError."""
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"{folder}: not a folder")

    def unreadable(exc: OSError) -> None:
        where = os.fsencode(exc.filename if exc.filename is not None else root).decode("utf-8", "backslashreplace")
        if errors is None:
            raise UsageError(f"{where}: folder cannot be read ({exc.strerror or exc})")
        errors.append(PlanItem("fail", where, reason=f"folder cannot be read: {exc.strerror or exc}"))

    out = []
    for dirpath, dirs, files in os.walk(root, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not is_ignored_dir(os.fsencode(d)))
        for fn in sorted(files):
            if kind_of(os.fsencode(fn)):
                path = os.path.join(dirpath, fn)
                when, camera = capture_time(path)
                out.append(AlbumFile(path, when, camera))
    return out


def target_name(pattern: str, f: AlbumFile, date: dt.datetime) -> str:
    """The new file name (extension from the source, lower case). Fields: {date:FMT}, {name}, {camera}."""
    stem = Path(f.source).stem
    camera = re.sub(r"[^\w.-]+", "-", f.camera or "").strip("-")
    try:
        base = pattern.format(date=date, name=stem, camera=camera or "unknown")
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise UsageError(f"bad name pattern {pattern!r}: {exc}") from None
    base = base.replace("/", "-").replace(os.sep, "-").strip() or stem
    return base + Path(f.source).suffix.lower()


def sync_album(files: Iterable[AlbumFile], root: str | os.PathLike[str], category: str, *, mode: str = "copy",
               pattern: str = DEFAULT_PATTERN, dry_run: bool = False,
               progress: Callable[[int, int, str], None] | None = None) -> AlbumReport:
    """Place each file in ``root/category`` under a date-based name.

    Files whose content is already in the category (under any name) are skipped; two different files
    that would get the same name are told apart with ``_2``, ``_3``... Nothing existing is overwritten.
    """
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    parts = Path(category).parts
    if not category.strip() or Path(category).is_absolute() or any(p in ("..", ".") for p in parts):
        raise UsageError(f"bad category {category!r}: a folder name inside the root")
    dest_dir = Path(root) / category.strip("/")
    check_folder_target(dest_dir)
    report = AlbumReport(dry_run=dry_run)
    items = sorted(files, key=lambda f: (f.captured is None, _sort_key(f.captured), f.source))
    existing = _existing_by_size(dest_dir)  # size -> [paths]; content checks only where sizes match
    taken = {p.name for paths in existing.values() for p in paths}
    planned: dict[Path, str] = {}  # dry run: destination -> the source that would be placed there
    album_dev = _device_of(dest_dir) if mode == "hardlink" else None
    for i, f in enumerate(items, 1):
        if progress:
            progress(i, len(items), f.source)
        try:
            st = os.stat(f.source)
        except OSError as exc:
            report.failed += 1
            report.plan.append(PlanItem("fail", f.source, reason=f"cannot read: {exc.strerror}"))
            continue
        dup = _already_there(f.source, st.st_size, existing, mode, planned)
        if dup is not None:
            report.skipped += 1
            report.plan.append(PlanItem("skip", str(dup), source=f.source, reason="already in the album"))
            continue
        if mode == "hardlink" and album_dev is not None and st.st_dev != album_dev:
            report.failed += 1  # known before trying, so a dry run says it too
            report.plan.append(PlanItem("fail", f.source, reason=CROSS_DEVICE))
            continue
        date = f.captured
        reason = None
        if date is None:
            date = dt.datetime.fromtimestamp(st.st_mtime)
            reason = "no capture date in the file: named by its modification time"
        name = _free_name(target_name(pattern, f, date), taken)
        taken.add(name)
        dest = dest_dir / name
        action = {"copy": "copy", "link": "link", "hardlink": "link"}[mode]
        report.plan.append(PlanItem(action, str(dest), source=f.source, reason=reason))
        if dry_run:
            # as if placed: a later file with the same content is then skipped, as the real run will
            existing.setdefault(st.st_size, []).append(dest)
            planned[dest] = f.source
            report.placed += 1
            continue
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
            if mode == "copy":
                verified_copy(f.source, dest)
            elif mode == "hardlink":
                os.link(f.source, dest)
            else:
                os.symlink(os.path.abspath(f.source), dest)
        except (DestinationExists, FileExistsError):
            report.plan[-1] = PlanItem("conflict", str(dest), source=f.source, reason="appeared meanwhile; untouched")
            report.failed += 1
            continue
        except OSError as exc:
            why = CROSS_DEVICE if exc.errno == errno.EXDEV else exc.strerror or str(exc)
            report.plan[-1] = PlanItem("fail", str(dest), source=f.source, reason=why)
            report.failed += 1
            if exc.errno in DISK_FULL:  # every next file would fail the same way: stop, say so once
                report.not_attempted = len(items) - i
                report.plan.append(PlanItem("fail", str(dest_dir), reason=(
                    f"album stopped: {os.strerror(exc.errno)} on its disk ({report.not_attempted} file(s) not "
                    "attempted); make room and run it again")))
                break
            continue
        existing.setdefault(st.st_size, []).append(dest)
        report.placed += 1
    return report


def _device_of(folder: Path) -> int | None:
    """The device of ``folder``, or of its nearest existing parent when it is still to be made."""
    for p in (folder, *folder.absolute().parents):
        try:
            return os.stat(p).st_dev
        except OSError:
            continue
    return None


def _sort_key(d: dt.datetime | None) -> float:
    if d is None:
        return 0.0
    return d.timestamp() if d.tzinfo else d.replace(tzinfo=dt.UTC).timestamp()


def _existing_by_size(folder: Path) -> dict[int, list[Path]]:
    out: dict[int, list[Path]] = {}
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.name.startswith("."):
                continue
            try:
                out.setdefault(os.stat(p).st_size, []).append(p)
            except OSError:
                continue
    return out


def _already_there(src: str, size: int, existing: dict[int, list[Path]], mode: str,
                   planned: dict[Path, str] | None = None) -> Path | None:
    """The file in the album with ``src``'s content; ``planned`` maps a dry run's would-be files to their
    sources, whose content stands in for them."""
    candidates = existing.get(size, [])
    if not candidates:
        return None
    src_real = os.path.realpath(src)
    src_hash: str | None = None
    for p in candidates:
        content = planned.get(p, p) if planned else p
        if mode == "link" and p.is_symlink() and os.path.realpath(p) == src_real:
            return p
        if src_hash is None:
            src_hash = hash_file(src)
        try:
            if hash_file(content) == src_hash:
                return p
        except OSError:
            continue
    return None


def _free_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    stem, ext = os.path.splitext(name)
    n = 2
    while f"{stem}_{n}{ext}" in taken:
        n += 1
    return f"{stem}_{n}{ext}"
