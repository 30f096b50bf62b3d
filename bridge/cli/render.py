"""How the CLI shows things to people (rich) and to programs (one JSON object on stdout)."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..models import Asset, PlanItem, ScanSummary, Stats

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def human_size(n: float | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def human_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def fps_text(fps: str | None) -> str:
    if not fps:
        return ""
    num, _, den = fps.partition("/")
    value = int(num) / int(den or 1)
    return f"{value:.3f}".rstrip("0").rstrip(".")


PLAN_STYLE = {"add": "green", "change": "yellow", "restore": "yellow", "move": "cyan", "missing": "red",
              "fail": "red", "write": "blue", "probe": "blue", "delete": "red", "remove": "red", "copy": "green",
              "link": "green", "skip": "dim", "conflict": "red", "adopt": "cyan"}


def plan_line(p: PlanItem) -> Text:
    t = Text()
    t.append(f"{p.action:8}", style=PLAN_STYLE.get(p.action, ""))
    if p.source:
        t.append(f"{p.source} -> ")
    t.append(p.path)
    if p.id is not None:
        t.append(f"  #{p.id}", style="dim")
    if p.reason:
        t.append(f"  ({p.reason})", style="dim")
    return t


def print_plan(plan: list[PlanItem], header: str = "would do") -> None:
    if not plan:
        out.print(f"[dim]{header}: nothing[/dim]")
        return
    out.print(f"[bold]{header}:[/bold]")
    for p in plan:
        out.print(plan_line(p))


def print_scan_summary(s: ScanSummary) -> None:
    if s.dry_run:
        print_plan(s.plan, "dry run, nothing changed; a scan would")
    verb = "would be" if s.dry_run else ""
    counts = ", ".join(f"{k} {v}" for k, v in s.counts.items())
    extra = f", skipped {s.skipped}" if s.skipped else ""
    tail = "" if s.complete else " [red](incomplete: rerun to finish)[/red]"
    out.print(f"[bold]{'Dry run' if s.dry_run else 'Scanned'}[/bold] {', '.join(s.roots)}: {counts}{extra}"
              f" {verb} in {s.elapsed:.2f} s{tail}".replace("  ", " "))
    if not s.dry_run:
        for p in s.plan:
            if p.action == "adopt":  # a real scan's one structural change: say it
                out.print(plan_line(p))
    if s.issues and not s.dry_run:
        err.print(f"[yellow]{s.issue_count} issue(s):[/yellow]")
        for issue in s.issues[:20]:
            err.print(Text(f"  {issue.path}: {issue.reason}"))
        if s.issue_count > 20:
            err.print(f"  ... and {s.issue_count - 20} more (--json lists up to {ScanSummary.MAX_ISSUES})")


def camera_text(make: str | None, model: str | None) -> str:
    if make and model and model.lower().startswith(make.lower()):
        return model
    return " ".join(x for x in (make, model) if x)


NARROW_COLUMNS = ("id", "name", "kind", "res", "dur", "captured")


def asset_table(assets: list[Asset], title: str | None = None) -> Table:
    """All columns on a wide terminal; the essential ones on a narrow one or in a pipe."""
    narrow = out.width < 140
    table = Table(title=title, show_lines=False, header_style="bold")
    cols = (("id", {"justify": "right"}), ("name", {"overflow": "fold"}), ("kind", {}), ("codec", {}),
            ("size", {"justify": "right"}), ("res", {}), ("fps", {"justify": "right"}),
            ("dur", {"justify": "right"}), ("captured", {}), ("camera", {}), ("★", {}), ("tags", {}))
    keep = [i for i, (c, _) in enumerate(cols) if not narrow or c in NARROW_COLUMNS]
    for i in keep:
        table.add_column(cols[i][0], **cols[i][1])
    for a in assets:
        codec = a.video_codec or a.audio_codec or (a.container if a.kind == "image" else "") or ""
        res = f"{a.width}x{a.height}" if a.width and a.height else ""
        name = Text(a.name)
        if a.status in ("failed", "missing"):
            name.append(f" [{a.status}]", style="red")
        captured = (a.captured_at or "")[:10 if narrow else 19]
        row = (str(a.id), name, a.kind, codec, human_size(a.size), res, fps_text(a.fps), human_duration(a.duration),
               captured, camera_text(a.camera_make, a.camera_model), "★" * a.rating if a.rating else "",
               ", ".join(a.tags))
        table.add_row(*(row[i] for i in keep))
    return table


def print_asset(a: Asset) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [
        ("id", str(a.id)), ("path", a.path), ("status", a.status + (f": {a.error}" if a.error else "")),
        ("kind", a.kind), ("size", f"{human_size(a.size)} ({a.size} bytes)"),
        ("container", a.container or ""), ("video", a.video_codec or ""), ("audio", a.audio_codec or ""),
        ("resolution", f"{a.width}x{a.height}" if a.width else ""),
        ("frame rate", f"{a.fps} ({fps_text(a.fps)} fps)" if a.fps else ""),
        ("duration", f"{human_duration(a.duration)} ({a.duration:.3f} s)" if a.duration else ""),
        ("has audio", "" if a.has_audio is None else ("yes" + (" (silent)" if a.audio_silent else "")
                                                       if a.has_audio else "no")),
        ("captured", a.captured_at or ""),
        ("camera", camera_text(a.camera_make, a.camera_model)),
        ("rating", str(a.rating) if a.rating is not None else ""), ("tags", ", ".join(a.tags)),
        ("note", a.note or ""), ("thumbnail", a.thumb or ""), ("fingerprint", a.fingerprint or ""),
    ]
    probe = a.probe or {}
    if probe.get("timecode"):
        rows.append(("timecode", str(probe["timecode"])))
    gps = probe.get("gps")
    if gps:
        rows.append(("gps", ", ".join(f"{k} {v}" for k, v in gps.items())))
    for k, v in rows:
        if v:
            table.add_row(k, Text(v))
    out.print(table)
    streams = probe.get("streams") or []
    if streams:
        st = Table(title="streams", header_style="bold")
        for col in ("#", "type", "codec", "details"):
            st.add_column(col)
        for s in streams:
            details = []
            if s.get("type") == "video":
                details = [f"{s.get('width')}x{s.get('height')}", s.get("pix_fmt") or "",
                           f"{s.get('frame_rate')} fps" if s.get("frame_rate") else "",
                           f"rot {s['rotation']}" if s.get("rotation") else "", s.get("color_transfer") or ""]
            elif s.get("type") == "audio":
                details = [f"{s.get('sample_rate')} Hz", f"{s.get('channels')} ch", s.get("channel_layout") or ""]
            st.add_row(str(s.get("index")), str(s.get("type")), str(s.get("codec") or ""),
                       " ".join(d for d in details if d))
        out.print(st)


def print_stats(s: Stats) -> None:
    out.print(f"[bold]{s.present}[/bold] assets present ({s.assets} catalogued), "
              f"{human_size(s.total_size)}, {human_duration(s.total_duration)} of media")
    for title, data in (("kind", s.by_kind), ("status", s.by_status), ("video codec", s.by_video_codec),
                        ("audio codec", s.by_audio_codec), ("resolution", s.by_resolution),
                        ("camera", s.by_camera), ("capture month", s.by_month), ("tags", s.tags)):
        if data:
            out.print(f"[bold]{title}:[/bold] " + ", ".join(f"{k} {v}" for k, v in list(data.items())[:15]))
    for r in s.roots:
        out.print(f"[bold]root[/bold] {r['url']}: {r['assets']} assets, {human_size(r['size'])}")


@contextlib.contextmanager
def progress_bar(quiet: bool, label: str) -> Iterator[Callable[[float, str], None]]:
    """A rich progress bar on stderr fed with (fraction, message); silent with --json or off a terminal."""
    if quiet or not err.is_terminal:
        yield lambda fraction, message: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), TextColumn("{task.fields[message]}"), console=err, transient=True) as bar:
        task = bar.add_task(label, total=1.0, message="")
        yield lambda fraction, message: bar.update(task, completed=fraction, message=message[:60])
