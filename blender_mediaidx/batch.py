"""Headless batch: one .blend per shot, plate imported and scene set from the bridge's probe.

    blender -b --python blender_mediaidx/batch.py -- --bridge tcp://127.0.0.1:5557 --query "sh010" --out shots/
    python -m blender_mediaidx.batch --bridge tcp://127.0.0.1:5557 42 43 --out shots/     (bpy module)

    python -m blender_mediaidx.batch track HERO [--witness W --offset N]... [--survey S.json] --out DIR
        [--pixel-aspect 2] [--witness-pixel-aspect N]...

Prints one JSON line at the end ({"built": [...], "failed": [...]}, or for `track` the shot summary);
exits 1 if any shot failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # the add-on rules allow sys.path changes only in this block
    if not __package__:
        # `blender --python blender_mediaidx/batch.py`: run as a script; make the package importable.
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        __package__ = "blender_mediaidx"


def parse(argv: list[str]) -> argparse.Namespace:
    from .core.sequences import SEQUENCE_CHOICES

    ap = argparse.ArgumentParser(prog="blender_mediaidx.batch", description="One .blend per shot from the index.")
    ap.add_argument("assets", nargs="*", type=int, help="asset ids")
    ap.add_argument("--query", help="search text (with --kind and --limit)")
    ap.add_argument("--kind", default="video")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--bridge", default=os.environ.get("MEDIAIDX_BRIDGE", "tcp://127.0.0.1:5557"))
    ap.add_argument("--server-key", default=None, help="the bridge's public CURVE key")
    ap.add_argument("--client-key", default=None, help="this client's .key_secret file")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--mode", default="clip", choices=("clip", "camera-bg", "strip", "plane"))
    ap.add_argument("--sequence", default="auto", choices=SEQUENCE_CHOICES,
                    help="a numbered still image: auto (a sequence when named or formatted like a plate), single "
                         "(that one image) or sequence (all its numbered neighbours; a shot without any fails)")
    ap.add_argument("--start-frame", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    if not args.assets and not args.query:
        ap.error("give asset ids or --query")
    if not re.match(r"^(tcp|ipc)://.+", args.bridge):
        ap.error(f"--bridge {args.bridge!r} is not a ZeroMQ address (tcp://HOST:PORT or ipc://PATH)")
    return args


def blender_argv() -> list[str]:
    """Our arguments: after `--` under `blender --python`, all of them under `python -m`."""
    argv = sys.argv
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


PROGRESS_PREFIX = "mediaidx-shot-done"  # one stdout line per shot, built or failed


def safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", os.path.splitext(name)[0]).strip("_") or "shot"


def fetched_sequence_error(name: str, kind: str | None, sequence: str) -> str | None:
    """Why a still image that is not on this machine cannot be imported under ``sequence`` (None when it can):
    only its one file comes through the bridge, so "sequence" has no numbered neighbours to take. The batch
    worker, the import operator and `mediaidx blend --dry-run` say it in these words, before any fetch."""
    if sequence == "sequence" and kind == "image":
        return (f"{name}: not on this machine, and only this one file comes through the bridge: an image "
                "sequence needs its frames here (mount or copy its folder), or import it as a single image")
    return None


def save_blend(path: Path) -> None:
    """Save the open scene as ``path`` without Blender's backup of the file it replaces (``path``.blend1): a
    rerun writes exactly the files its plan lists (`mediaidx blend` and `track --save-blend` dry runs)."""
    import bpy

    prefs = bpy.context.preferences.filepaths
    versions = prefs.save_version
    prefs.save_version = 0
    try:
        bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)
    finally:
        prefs.save_version = versions


def run(args: argparse.Namespace) -> dict[str, Any]:
    import bpy

    from . import importer
    from .core.client import BridgeClient
    from .prefs import Settings

    try:  # before connecting: an output folder that cannot be made is one line, not a traceback
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(json.dumps({"error": f"cannot create the output folder {args.out}: "
                                              f"{exc.strerror or exc}"})) from None
    keys = None
    if args.client_key:
        import zmq.auth

        try:
            keys = zmq.auth.load_certificate(args.client_key)
        except (OSError, ValueError) as exc:
            raise SystemExit(json.dumps({"error": f"--client-key: {exc}"})) from None
        if keys[1] is None:
            raise SystemExit(json.dumps({"error": f"--client-key {args.client_key}: no secret key in it (give "
                                                  "the .key_secret file)"}))
    client = BridgeClient(args.bridge, name=f"batch-{os.getpid()}", kind="batch",
                          server_public_key=args.server_key, client_keys=keys, heartbeat_s=0.5).start()
    built: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    try:
        if not client.wait(lambda: client.state == "connected", 15):
            raise SystemExit(json.dumps({"error": f"no bridge at {args.bridge}"}))
        ids = list(args.assets)
        if args.query:
            filters = {"status": "ok", **({"kind": args.kind} if args.kind else {})}  # failed files are no shots
            found = client.call("search", {"query": args.query, "filters": filters,
                                           "limit": args.limit, "count": False})
            ids += [a["id"] for a in found["results"] if a["id"] not in ids]
        cache = Settings(cache_dir=str(args.out / ".cache")).cache
        for asset_id in ids:
            try:
                asset = client.call("show", {"asset": asset_id}, timeout_s=30)
                path = asset.get("path")
                if not importer.readable(path):
                    problem = fetched_sequence_error(asset.get("name") or str(asset_id), asset.get("kind"),
                                                     args.sequence)
                    if problem:
                        raise importer.PlateImportError(problem)
                    ext = asset.get("ext") or "bin"
                    t = client.fetch(cache / f"{asset_id}-{(asset.get('fingerprint') or 'x')[:16]}.{ext}",
                                     asset=asset_id)
                    client.wait(lambda t=t: t.finished, args.timeout)
                    if not t.done:
                        raise importer.PlateImportError(f"fetch failed: {t.error.message if t.error else 'timeout'}")
                    path = str(t.dest)
                bpy.ops.wm.read_homefile(use_empty=True)
                scene = bpy.context.scene
                result = importer.import_asset(asset, args.mode, path=path, scene=scene, start_frame=args.start_frame,
                                               sequence=args.sequence)
                dest = args.out / f"{safe_name(asset['name'])}_{asset_id}.blend"
                save_blend(dest)
                s = result.settings
                built.append({"asset": asset_id, "blend": str(dest), "fps": s.fps, "fps_base": s.fps_base,
                              "frame_start": s.frame_start, "frame_end": s.frame_end,
                              "resolution": [s.width, s.height],
                              **({"warnings": result.warnings} if result.warnings else {}),
                              **({"notes": result.notes} if result.notes else {})})
            except (importer.PlateImportError, Exception) as exc:  # one bad shot must not stop the batch
                failed.append({"asset": asset_id, "error": getattr(exc, "message", None) or str(exc)})
            print(f"{PROGRESS_PREFIX} {asset_id}", flush=True)  # bridge.blend counts these for its progress bar
    finally:
        client.stop()
    return {"built": built, "failed": failed}


def parse_track(argv: list[str]) -> argparse.Namespace:
    from .core.track_formats import FORMATS, load_survey
    from .tracking.plan import option_error  # bpy-free: `mediaidx track` checks with the same function

    ap = argparse.ArgumentParser(prog="blender_mediaidx.batch track",
                                 description="Solve a hero camera and its witnesses; export for matchmove.")
    ap.add_argument("hero", help="the hero plate: a movie or the first image of a sequence")
    ap.add_argument("--witness", action="append", default=[], help="a witness plate (repeat)")
    ap.add_argument("--offset", action="append", type=float, default=[],
                    help="per witness, in order: frames its first image starts after the hero's (sync offset)")
    ap.add_argument("--sync-source", default="given", choices=("given", "timecode", "audio"))
    ap.add_argument("--survey", type=Path, help="JSON: {point: {camera: [[frame, x_px, y_px], ...]}}")
    ap.add_argument("--focal-px", type=float, help="known hero focal length in pixels")
    ap.add_argument("--sensor-width", type=float, help="sensor width in mm (all cameras)")
    ap.add_argument("--pixel-aspect", type=float,
                    help="the hero's pixel aspect (width / height of a stored pixel, 0.1..10), when its metadata "
                         "is missing or wrong; default: the plate's sample aspect ratio")
    ap.add_argument("--witness-pixel-aspect", action="append", type=float, default=[],
                    help="per witness, in order: its pixel aspect (0: from its metadata)")
    ap.add_argument("--fps", help="scene rate, e.g. 24000/1001")
    ap.add_argument("--refine", default="FOCAL")
    ap.add_argument("--name", default="shot")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--save-blend", action="store_true", help="also save the solved scene as shot.blend")
    args = ap.parse_args(argv)
    # Bad options fail here in one line, before a solve that would ignore them or end in a traceback.
    problem = option_error(witnesses=len(args.witness), offsets=len(args.offset), fps=args.fps,
                           formats=args.formats, refine=args.refine, sensor_width=args.sensor_width,
                           focal_px=args.focal_px, pixel_aspect=args.pixel_aspect,
                           witness_pixel_aspect=args.witness_pixel_aspect)
    if problem:
        ap.error(problem)
    try:
        args.survey_points = load_survey(args.survey) if args.survey else {}
    except ValueError as exc:
        ap.error(f"--survey {exc}")
    return args


def run_track(args: argparse.Namespace) -> dict[str, Any]:
    import bpy

    from .tracking.plan import (
        SHOT_BLEND,
        SHOT_MANIFEST,
        camera_names,
        previous_exports,
        remove_stale_exports,
        witness_pixel_aspects,
    )
    from .tracking.shot import CameraSpec, ShotSpec, track_shot
    from .tracking.solver import TrackingError

    offsets = list(args.offset) + [0.0] * (len(args.witness) - len(args.offset))
    names = camera_names(len(args.witness))  # the names `mediaidx track --dry-run` plans the files under
    aspects = witness_pixel_aspects(args.witness_pixel_aspect, len(args.witness))  # None: from the probe
    spec = ShotSpec(
        hero=CameraSpec(path=args.hero, role="hero", name=names[0], focal_px=args.focal_px,
                        sensor_width_mm=args.sensor_width, pixel_aspect=args.pixel_aspect),
        witnesses=[CameraSpec(path=w, name=n, offset_frames=o, sync_source=args.sync_source,
                              sensor_width_mm=args.sensor_width, pixel_aspect=pa)
                   for w, n, o, pa in zip(args.witness, names[1:], offsets, aspects, strict=True)],
        survey=args.survey_points,
        fps=args.fps, refine="" if args.refine.upper() == "NONE" else args.refine.upper(), name=args.name)
    bpy.ops.wm.read_homefile(use_empty=True)

    def progress(fraction: float, message: str) -> None:
        print(json.dumps({"progress": round(fraction, 3), "message": message}), flush=True)

    try:
        previous = previous_exports(args.out)  # before this run's shot.json replaces the last one
        manifest = track_shot(spec, args.out, formats=tuple(args.formats.split(",")), progress=progress)
        if args.save_blend:
            try:
                save_blend(args.out / SHOT_BLEND)
            except RuntimeError as exc:
                raise OSError(str(exc).strip()) from None
        # The previous run's exports this one did not write (a witness that no longer solves, a .chan named
        # for an older filmback) go: the folder holds what shot.json lists. Only names that manifest listed.
        kept = {f for c in manifest["cameras"] for f in c["files"].values()} | {SHOT_MANIFEST, SHOT_BLEND}
        removed = remove_stale_exports(args.out, previous, kept)
    except TrackingError as exc:
        return {"failed": [{"error": str(exc)}], "built": []}
    except OSError as exc:  # an output folder that cannot be written: one line, not a traceback
        reason = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
        return {"failed": [{"error": f"cannot write the exports: {reason}"}], "built": []}
    cams = [{"name": c["name"], "role": c["role"], "error_px": c["solve"]["error_px"],
             "strategy": c["solve"]["strategy"], "files": c["files"],
             "aligned": bool(c.get("alignment")), "unsolved_frames": c.get("unsolved_frames", [])}
            for c in manifest["cameras"] if c["solve"]["ok"]]
    failed = [{"name": c["name"], "role": c["role"], "error": f"{c['clip']}: no solve ({c['solve']['reason']})"}
              for c in manifest["cameras"] if not c["solve"]["ok"]]
    return {"built": cams, "failed": failed, "manifest": str(args.out / "shot.json"),
            **({"removed": removed} if removed else {})}


def main(argv: list[str] | None = None) -> int:
    argv = blender_argv() if argv is None else argv
    if argv[:1] == ["track"]:
        summary = run_track(parse_track(argv[1:]))
        print(json.dumps(summary), flush=True)
        return 1 if summary["failed"] else 0
    args = parse(argv)
    summary = run(args)
    print(json.dumps(summary), flush=True)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    code = main()
    if "bpy" in sys.modules and sys.modules["bpy"].app.background and "--" in sys.argv:
        sys.stdout.flush()
        os._exit(code)  # under `blender -b --python`, exit with our status
    sys.exit(code)
