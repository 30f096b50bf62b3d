"""Headless batch: one .blend per shot, plate imported and scene set from the bridge's probe.

    blender -b --python blender_mediaidx/batch.py -- --bridge tcp://127.0.0.1:5557 --query "sh010" --out shots/
    python -m blender_mediaidx.batch --bridge tcp://127.0.0.1:5557 42 43 --out shots/     (bpy module)

Prints one JSON line at the end ({"built": [...], "failed": [...]}); exits 1 if any shot failed.
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
    ap.add_argument("--start-frame", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    if not args.assets and not args.query:
        ap.error("give asset ids or --query")
    return args


def blender_argv() -> list[str]:
    """Our arguments: after `--` under `blender --python`, all of them under `python -m`."""
    argv = sys.argv
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", os.path.splitext(name)[0]).strip("_") or "shot"


def run(args: argparse.Namespace) -> dict[str, Any]:
    import bpy

    from . import importer
    from .core.client import BridgeClient
    from .prefs import Settings

    keys = None
    if args.client_key:
        import zmq.auth

        keys = zmq.auth.load_certificate(args.client_key)
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
        args.out.mkdir(parents=True, exist_ok=True)
        cache = Settings(cache_dir=str(args.out / ".cache")).cache
        for asset_id in ids:
            try:
                asset = client.call("show", {"asset": asset_id}, timeout_s=30)
                path = asset.get("path")
                if not importer.readable(path):
                    ext = asset.get("ext") or "bin"
                    t = client.fetch(cache / f"{asset_id}-{(asset.get('fingerprint') or 'x')[:16]}.{ext}",
                                     asset=asset_id)
                    client.wait(lambda t=t: t.finished, args.timeout)
                    if not t.done:
                        raise importer.PlateImportError(f"fetch failed: {t.error.message if t.error else 'timeout'}")
                    path = str(t.dest)
                bpy.ops.wm.read_homefile(use_empty=True)
                scene = bpy.context.scene
                result = importer.import_asset(asset, args.mode, path=path, scene=scene, start_frame=args.start_frame)
                dest = args.out / f"{safe_name(asset['name'])}_{asset_id}.blend"
                bpy.ops.wm.save_as_mainfile(filepath=str(dest), check_existing=False)
                s = result.settings
                built.append({"asset": asset_id, "blend": str(dest), "fps": s.fps, "fps_base": s.fps_base,
                              "frame_start": s.frame_start, "frame_end": s.frame_end,
                              "resolution": [s.width, s.height]})
            except (importer.PlateImportError, Exception) as exc:  # one bad shot must not stop the batch
                failed.append({"asset": asset_id, "error": getattr(exc, "message", None) or str(exc)})
    finally:
        client.stop()
    return {"built": built, "failed": failed}


def main(argv: list[str] | None = None) -> int:
    args = parse(blender_argv() if argv is None else argv)
    summary = run(args)
    print(json.dumps(summary), flush=True)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    code = main()
    if "bpy" in sys.modules and sys.modules["bpy"].app.background and "--" in sys.argv:
        sys.stdout.flush()
        os._exit(code)  # under `blender -b --python`, exit with our status
    sys.exit(code)
