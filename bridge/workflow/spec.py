"""Workflow validation: the whole file is checked before any step runs, and errors name step and field."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import WorkflowError

STR, BOOL, INT, NUM, STRS = "string", "boolean", "integer", "number", "string or list of strings"
LIST = "non-empty list of asset ids (integers)"

FILTER_FIELDS = {
    "query": STR, "kind": STR, "codec": STR, "resolution": STR, "min_duration": NUM, "max_duration": NUM,
    "has_audio": BOOL, "date_from": STR, "date_to": STR, "camera": STR, "tags": STRS, "min_rating": INT,
    "root": STR,
}


@dataclass(frozen=True)
class ActionSpec:
    required: dict[str, str]
    optional: dict[str, str]
    doc: str


ACTIONS: dict[str, ActionSpec] = {
    "scan": ActionSpec(
        {"root": STRS},
        {"probe": BOOL, "thumbs": BOOL, "follow_symlinks": BOOL, "retry_failed": BOOL, "allow_empty": BOOL,
         "jobs": INT},
        "sync the catalog with one or more roots"),
    "stats": ActionSpec({}, {}, "library statistics"),
    "backup": ActionSpec(
        {"backup_root": STR}, {**FILTER_FIELDS, "create_root": BOOL},
        "copy matching assets to backup_root with verified hashes; never overwrite a different file"),
    "sync_album": ActionSpec(
        {"root": STR, "category": STR},
        {"source": STR, "mode": STR, "pattern": STR, **{k: v for k, v in FILTER_FIELDS.items() if k != "root"},
         "assets": LIST},
        "copy or link a folder (source) or catalog selection into root/category, renamed by capture date"),
}
COMMON = {"action": STR, "name": STR, "dry_run": BOOL}

# The fields that name files or folders, per action, and what the step does with them: "root" registers a
# scan root, "read" reads a folder, "write" writes into one. A service that runs workflows for its clients
# checks every one of them before anything runs (bridge/service/rootpolicy.py). The filter field "root" of
# backup is not here: it only narrows a catalog search.
PATH_FIELDS: dict[str, dict[str, str]] = {
    "scan": {"root": "root"},
    "backup": {"backup_root": "write"},
    "sync_album": {"root": "write", "source": "read"},
}


@dataclass
class Step:
    index: int            # 1-based, as people count
    action: str
    params: dict[str, Any]
    name: str | None = None
    dry_run: bool = False

    @property
    def label(self) -> str:
        return f"step {self.index} ({self.name or self.action})"

    def paths(self) -> Iterator[tuple[str, str, str]]:
        """(field, path, use) for every file system path or storage URL this step names (``PATH_FIELDS``);
        sync_album's destination folder ``root/category`` too, as field "root/category"."""
        for fname, use in PATH_FIELDS.get(self.action, {}).items():
            value = self.params.get(fname)
            for v in value if isinstance(value, list) else [value] if value is not None else []:
                yield fname, v, use
        if self.action == "sync_album":
            yield "root/category", self.params["root"].rstrip("/") + "/" + self.params["category"].strip("/"), "write"


def _type_ok(value: Any, kind: str) -> bool:
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == NUM:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == LIST:
        # never empty: an empty selection read as "no selection" made sync_album take the whole library
        return isinstance(value, list) and value != [] and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)
    if kind == STRS:
        return isinstance(value, str) or (isinstance(value, list) and value != []
                                          and all(isinstance(v, str) for v in value))
    return False


def parse(spec: Any, check: Callable[[list[Step]], None] | None = None) -> tuple[list[Step], bool]:
    """Steps of a workflow document and its ``continue_on_error`` flag; WorkflowError on any problem.

    ``check`` sees the validated steps before anything runs and raises to refuse the whole workflow (a
    service uses it to keep every path a client names inside the roots it allows)."""
    continue_on_error = False
    if isinstance(spec, dict) and "workflow" in spec:
        extra = set(spec) - {"workflow", "continue_on_error", "name", "description"}
        if extra:
            raise WorkflowError(f"workflow: unknown field(s) {', '.join(sorted(extra))}")
        steps_in = spec["workflow"]
        continue_on_error = spec.get("continue_on_error", False)
        if not isinstance(continue_on_error, bool):  # "no" must not quietly mean true
            raise WorkflowError(f"workflow: field 'continue_on_error' must be a boolean, not {continue_on_error!r}")
        if not isinstance(steps_in, list):
            raise WorkflowError("workflow: 'workflow' must be a list of steps")
    elif isinstance(spec, dict):
        steps_in = [spec]
    elif isinstance(spec, list):
        steps_in = spec
    else:
        raise WorkflowError("workflow: expected a step object or {\"workflow\": [steps]}")
    if not steps_in:
        raise WorkflowError("workflow: no steps")
    steps = [_step(i, raw) for i, raw in enumerate(steps_in, 1)]
    if check is not None:
        check(steps)
    return steps, continue_on_error


def _step(index: int, raw: Any) -> Step:
    if not isinstance(raw, dict):
        raise WorkflowError(f"step {index}: expected an object with an 'action'")
    action = raw.get("action")
    if action is None:
        raise WorkflowError(f"step {index}: missing field 'action'")
    if action not in ACTIONS:
        raise WorkflowError(f"step {index}: unknown action {action!r} (known: {', '.join(ACTIONS)})")
    spec = ACTIONS[action]
    label = f"step {index} ({action})"
    for fname in spec.required:
        if fname not in raw:
            raise WorkflowError(f"{label}: missing field '{fname}'")
    allowed = {**spec.required, **spec.optional, **COMMON}
    for fname, value in raw.items():
        if fname not in allowed:
            raise WorkflowError(f"{label}: unknown field '{fname}' (allowed: {', '.join(sorted(allowed))})")
        if not _type_ok(value, allowed[fname]):
            raise WorkflowError(f"{label}: field '{fname}' must be a {allowed[fname]}, not {value!r}")
    if action == "sync_album" and ("source" in raw) == any(k in raw for k in ("assets", "query", "tags")):
        raise WorkflowError(f"{label}: give either 'source' (a folder) or a catalog selection "
                            "('assets', 'query' or 'tags'), not both or neither")
    if action == "sync_album" and "assets" in raw and (ignored := sorted(k for k in raw if k in FILTER_FIELDS and k != "root")):
        raise WorkflowError(f"{label}: 'assets' names the files itself; the filters {', '.join(ignored)} "
                            "would be ignored: give one or the other")
    if action == "sync_album" and raw.get("mode", "copy") not in ("copy", "link", "hardlink"):
        raise WorkflowError(f"{label}: field 'mode' must be copy, link or hardlink")
    if action == "sync_album":
        _check_album(label, raw)
    if action in ("backup", "sync_album"):
        _check_filters(label, raw)
    params = {k: v for k, v in raw.items() if k not in COMMON}
    return Step(index, action, params, raw.get("name"), bool(raw.get("dry_run", False)))


def _check_album(label: str, raw: dict[str, Any]) -> None:
    """The category and name pattern of a sync_album step, checked before any step runs (not at its first file)."""
    import datetime as dt
    from pathlib import Path

    from ..errors import UsageError
    from ..library.album import AlbumFile, target_name

    category = raw["category"]
    if not category.strip() or Path(category).is_absolute() or any(p in ("..", ".") for p in Path(category).parts):
        raise WorkflowError(f"{label}: field 'category' must be a folder name inside the root, not {category!r}")
    if "pattern" in raw:
        try:
            target_name(raw["pattern"], AlbumFile("x.jpg", None, "camera"), dt.datetime(2000, 1, 2, 3, 4, 5))
        except UsageError as exc:
            raise WorkflowError(f"{label}: field 'pattern': {exc}") from None


def _check_filters(label: str, raw: dict[str, Any]) -> None:
    """Filter values the catalog search would refuse (a bad date or resolution), one field at a time so the
    error names it, before any step runs."""
    from ..catalog.search import SearchFilters, where_clause
    from ..errors import UsageError

    for fname, value in raw.items():
        if fname not in FILTER_FIELDS or fname == "root":
            continue
        try:
            if fname == "query":
                where_clause(value, SearchFilters())
            else:
                where_clause(None, SearchFilters(**{fname: [value] if fname == "tags" and isinstance(value, str)
                                                    else value}))
        except UsageError as exc:
            raise WorkflowError(f"{label}: field '{fname}': {exc}") from None
