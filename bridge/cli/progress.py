"""Rich progress for scans and workflows, on stderr so that stdout stays clean for --json and pipes."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ..scan import ScanEvent


class ScanProgress:
    """A callable progress sink: one line for the walk, one bar for the content work (probe/thumbnails)."""

    def __init__(self, enabled: bool = True) -> None:
        console = Console(stderr=True)
        self.enabled = enabled and console.is_terminal
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=True, disable=not self.enabled)
        self._walk = None
        self._work = None

    def __enter__(self) -> ScanProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, ev: ScanEvent) -> None:
        if not self.enabled:
            return
        if self._walk is None:
            self._walk = self._progress.add_task("walking", total=None)
        if ev.phase in ("walk", "resolve", "work"):
            self._progress.update(self._walk, description=f"{ev.phase} {ev.folders} folders, {ev.files} files",
                                  completed=ev.files)
        if ev.work_total:
            if self._work is None:
                self._work = self._progress.add_task("reading", total=ev.work_total)
            self._progress.update(self._work, total=ev.work_total, completed=ev.work_done,
                                  description="probing")
