"""`mediaidx shots | keyframes | hero | contact-sheet | analyze`: the video-analysis commands.

Kept out of app.py so the analysis commands are one import there; they are thin over ``bridge.analysis``
(files) and ``MediaIndexer.analyze`` (catalog assets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import UsageError
from ..models import PlanItem
from . import render
from .options import DryOpt, JsonOpt

FileArg = Annotated[Path, typer.Argument(help="A video file (catalog not needed).")]


def _shot_table(shots: list[dict[str, Any]], fps: float) -> Any:
    from rich.table import Table

    from ..analysis.sheet import timecode

    table = Table("#", "start", "end", "frames", "starts with", "score", "key frame", box=None)
    for s in shots:
        k = s.get("keyframe")
        table.add_row(str(s["index"] + 1), timecode(s["start_time"], fps), timecode(s["end_time"], fps),
                      f"{s['start_frame']}-{s['end_frame']}", s["boundary"],
                      "" if s["score"] is None else f"{s['score']:.2f}",
                      "" if not k else f"{k['frame']} ({k['scores']['total']:.2f})")
    return table


def _scores_line(scores: dict[str, Any]) -> str:
    keys = ("total", "sharpness", "exposure", "colourfulness", "stillness", "faces")
    text = ", ".join(f"{k} {scores[k]:.2f}" for k in keys if isinstance(scores.get(k), int | float))
    if scores.get("face_count"):
        text += f", {scores['face_count']} face(s)"
    if scores.get("rejected"):
        text += f", rejected: {scores['rejected']}"
    return text


def _analyze_many(ix: Any, refs: list[str | int], dry_run: bool, as_json: bool) -> None:
    """One clip after another with a progress bar; a clip that cannot be analysed is reported and the rest go
    on (exit 1 at the end if any failed)."""
    from ..errors import MediaIdxError

    results: list[dict[str, Any]] = []
    with render.progress_bar(as_json, "analysing") as update:
        for i, ref in enumerate(refs):
            update(i / len(refs), f"{ref}")
            try:
                results.append(ix.analyze(ref, dry_run=dry_run))
            except (MediaIdxError, OSError) as exc:  # gone or unreadable since its scan: this clip only
                results.append({"asset": ref, "dry_run": dry_run, "error": str(exc)})
        update(1.0, "done")
    failed = [r for r in results if r.get("error")]
    if as_json:
        render.print_json({"dry_run": dry_run, "results": results})
    else:
        if dry_run:
            render.print_plan([PlanItem(**p) for r in results for p in r.get("plan", [])],
                              "dry run, nothing changed; analyze would")
        done = sum(1 for r in results if not r.get("error") and not r.get("up_to_date"))
        fresh = sum(1 for r in results if r.get("up_to_date"))
        render.out.print(f"{'would analyse' if dry_run else 'analysed'} {done}, up to date {fresh}, "
                         f"failed {len(failed)}")
        for r in failed:
            render.err.print(f"[red]failed[/red] asset {r['asset']}: {r['error']}")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command()
    def shots(file: FileArg, as_json: JsonOpt = False) -> None:
        """Shot boundaries: hard cuts, fades to/from black or white, and cross-dissolves."""
        from ..analysis import detect_shots

        result = detect_shots(file)
        if as_json:
            render.print_json(result.to_dict())
            return
        render.out.print(f"[bold]{file}[/bold]: {len(result.shots)} shot(s), {result.frames} frames, "
                         f"{result.speed:.1f}x real time")
        render.out.print(_shot_table([s.to_dict() for s in result.shots], result.info.fps))

    @app.command()
    def keyframes(
        file: FileArg,
        out: Annotated[Path | None, typer.Option("--out", help="Write one JPEG per key frame into this folder.")]
        = None,
        max_size: Annotated[int, typer.Option(min=64, max=8192, help="Long side of written key frames.")] = 1280,
        as_json: JsonOpt = False,
    ) -> None:
        """A representative frame per shot, with the scores that chose it."""
        from ..analysis import analyze_video, write_keyframes

        a = analyze_video(file)
        d = a.to_dict()
        if out is not None:
            paths = write_keyframes(a, out, max_side=max_size)
            for s, p in zip((s for s in d["shots"] if s["keyframe"]), paths, strict=True):
                s["keyframe"]["path"] = str(p)
        if as_json:
            render.print_json(d)
            return
        render.out.print(f"[bold]{file}[/bold]: {len(d['shots'])} shot(s)")
        render.out.print(_shot_table(d["shots"], a.shots.info.fps))
        for s in d["shots"]:
            if s["keyframe"]:
                where = f" -> {s['keyframe']['path']}" if "path" in s["keyframe"] else ""
                render.out.print(f"  shot {s['index'] + 1}: {_scores_line(s['keyframe']['scores'])}{where}")

    @app.command()
    def hero(
        file: FileArg,
        out: Annotated[Path, typer.Option("--out", help="Image to write (.jpg, .png or .webp).")],
        max_size: Annotated[int, typer.Option(min=64, max=8192, help="Long side of the image.")] = 1920,
        as_json: JsonOpt = False,
    ) -> None:
        """The clip's hero image: sharp, well exposed, colourful, faces preferred, never a black, flash or
        transition frame; its scores say why it won."""
        from ..analysis import AnalysisError, analyze_video, write_hero
        from ..analysis.pipeline import picture_format

        picture_format(out)   # a bad name fails now, not after the whole clip was decoded
        a = analyze_video(file)
        if a.hero is None:
            raise AnalysisError(f"{file}: no frame could be scored")
        path = write_hero(a, out, max_side=max_size)
        d = {"file": str(file), "out": str(path), "hero": a.hero.to_dict(), "shots": len(a.shots.shots)}
        if as_json:
            render.print_json(d)
            return
        h = a.hero
        render.out.print(f"hero: shot {h.shot + 1}, frame {h.frame} ({h.time:.2f} s) -> {path}")
        render.out.print(f"  {_scores_line(h.scores)}")

    @app.command("contact-sheet")
    def contact_sheet(
        file: FileArg,
        out: Annotated[Path, typer.Option("--out", help="Image to write (.jpg, .png or .webp).")],
        columns: Annotated[int, typer.Option(min=1, max=20, help="Key frames per row.")] = 5,
        thumb_width: Annotated[int, typer.Option(min=64, max=1024, help="Width of each cell.")] = 240,
        as_json: JsonOpt = False,
    ) -> None:
        """One image with the clip's key frames in a grid, each labelled with its shot and timecode."""
        from ..analysis import analyze_video, write_contact_sheet
        from ..analysis.pipeline import picture_format

        picture_format(out)
        a = analyze_video(file)
        path = write_contact_sheet(a, out, columns=columns, thumb_width=thumb_width)
        if as_json:
            render.print_json({"file": str(file), "out": str(path), "keyframes": len(a.keyframes)})
        else:
            render.out.print(f"{len(a.keyframes)} key frame(s) -> {path}")

    @app.command()
    def analyze(
        ctx: typer.Context,
        assets: Annotated[list[str] | None, typer.Argument(help="Asset ids or file paths (in the catalog).")] = None,
        pending: Annotated[bool, typer.Option(
            "--pending", help="Every video not yet analysed from its current content (a library scanned "
                              "without --analyze).")] = False,
        root: Annotated[str | None, typer.Option(help="With --pending: only this root.")] = None,
        dry_run: DryOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Analyse catalogued clips: store their shots, key frames and hero image in the catalog."""
        ix = ctx.obj["indexer"]
        if root and not pending:
            raise UsageError("--root goes with --pending")
        refs: list[str | int] = [*(assets or []), *(ix.pending_analysis(root) if pending else [])]
        if not refs:
            if pending:
                render.out.print("nothing to analyse: every video is analysed from its current content")
                return
            raise UsageError("give asset ids or paths, or --pending")
        if len(refs) > 1 or pending:
            _analyze_many(ix, refs, dry_run, as_json)
            return
        result = ix.analyze(refs[0], dry_run=dry_run)
        if as_json:
            render.print_json(result)
            return
        if result.get("up_to_date"):
            render.out.print(f"up to date (analysed from this content): {result['shots']} shot(s); "
                             f"hero: {result['hero'] or 'none'}")
            return
        if dry_run:
            for p in result["plan"]:
                render.out.print(f"would {p['action']} {p['path']}" + (f" ({p['reason']})" if p.get("reason") else ""))
            return
        if result.get("error"):
            from ..analysis import AnalysisError

            raise AnalysisError(f"asset {result['asset']}: not analysed: {result['error']}")
        render.out.print(f"{result['shots']} shot(s); hero: {result['hero'] or 'none'}")
