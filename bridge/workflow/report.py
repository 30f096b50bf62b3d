"""Human-readable workflow results for the CLI."""

from __future__ import annotations

from typing import Any

from ..cli import render
from ..models import PlanItem


def print_results(results: list[dict[str, Any]], dry_run: bool) -> None:
    for r in results:
        head = f"step {r['step']} {r.get('name') or r['action']}"
        style = {"ok": "green", "failed": "red", "skipped": "dim"}[r["status"]]
        render.out.print(f"[bold]{head}[/bold] [{style}]{r['status']}[/{style}]"
                         + (" (dry run)" if r.get("dry_run") else ""))
        if r.get("error"):
            render.err.print(f"  [red]{r['error']}[/red]")
        res = r.get("result") or {}
        plan = res.get("plan") or []
        if plan and (r.get("dry_run") or r["action"] != "scan"):
            # the first 200 lines, then every problem after them: a "backup stopped: the disk is full" line at
            # the end of a long plan must not hide behind "... more"
            shown = plan[:200] + [p for p in plan[200:] if p.get("action") in ("fail", "conflict")]
            for p in shown:
                render.out.print(render.plan_line(PlanItem(**p)))
            if len(plan) > len(shown):
                render.out.print(f"  ... {len(plan) - len(shown)} more (use --json for all)")
        if r["action"] == "scan" and res:
            render.out.print("  " + ", ".join(f"{k} {res.get(k, 0)}" for k in
                                              ("added", "changed", "moved", "missing", "unchanged", "failed")))
        elif r["action"] == "stats" and res:
            render.out.print(f"  {res.get('present')} assets, {render.human_size(res.get('total_size'))}, "
                             f"{render.human_duration(res.get('total_duration'))}")
        elif r["action"] in ("backup", "sync_album") and res:
            keys = [k for k in ("copied", "placed", "skipped", "conflicts", "failed", "not_attempted") if k in res]
            render.out.print("  " + ", ".join(f"{k} {res[k]}" for k in keys))
