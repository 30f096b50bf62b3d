"""`mediaidx blend`: .blend files per shot, built by headless Blender workers talking to a bridge.

Each worker is `python -m blender_mediaidx.batch` (Blender as a Python module) in its own process, with its
own HOME so workers never share Blender's user configuration. Without ``bridge`` a private bridge serves
this catalog on a free loopback port for the duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import MediaIdxError
from .indexer import MediaIndexer
from .models import PlanItem

MODES = ("clip", "camera-bg", "strip", "plane")  # blender_mediaidx.importer.MODES (that module needs bpy)


def check_mode(mode: str, sequence: str = "auto") -> None:
    """Refused here, in one line, rather than by every worker after Blender has started."""
    from blender_mediaidx.core.sequences import SEQUENCE_CHOICES  # bpy-free

    if mode not in MODES:
        raise MediaIdxError(f"unknown import mode {mode!r} (use {', '.join(MODES)})")
    if sequence not in SEQUENCE_CHOICES:
        raise MediaIdxError(f"unknown sequence choice {sequence!r} (use {', '.join(SEQUENCE_CHOICES)})")


def _sequence_plan(path: str, sequence: str) -> tuple[str, str | None]:
    """What the worker's importer makes of a still image under ``sequence``: (how, refusal or None). A file not
    on this machine (a remote root) is fetched alone, as one image; "sequence" is refused for it (the worker
    refuses it before fetching, in the same words: blender_mediaidx.batch.fetched_sequence_error)."""
    from blender_mediaidx.batch import fetched_sequence_error  # bpy-free
    from blender_mediaidx.core.sequences import SequenceChoiceError, find_sequence  # bpy-free

    if not (path and os.path.isfile(path)):
        refusal = fetched_sequence_error(os.path.basename(path or "") or "the image", "image", sequence)
        return ("", refusal) if refusal else ("; single image (fetched through the bridge)", None)
    try:
        seq = find_sequence(path, sequence)
    except SequenceChoiceError as exc:
        return "", str(exc)
    if seq is None:
        return "; single image", None
    return f"; image sequence {seq.first}-{seq.last} ({seq.frame_count} frames)", None


def one_per_sequence(ix: MediaIndexer, ids: list[int], sequence: str = "auto") -> tuple[list[int], dict[int, int]]:
    """The shots to build: every frame of an image sequence is an asset of its own, so a search for a timelapse
    returns each of its frames; the sequence is built once, from the first of them asked for that is not failed
    or missing (unprobed frames of a scan --no-probe group like probed ones).
    A frame failed or missing in the catalog (a damaged first frame) never represents its sequence nor is left
    out for another: it stays a shot of its own, which plan_blends reports as failed, and never takes its
    sequence down with it. Returns the ids kept, in order, and each id left out with the id whose .blend holds
    its sequence."""
    from blender_mediaidx.core.sequences import SequenceChoiceError, find_sequence  # bpy-free

    kept: list[int] = []
    left: dict[int, int] = {}
    seen: dict[tuple[str, str, str], int] = {}
    for asset_id in ids:
        a = ix.get(asset_id)
        seq = None
        # a failed or missing frame is its own (failing) shot; unprobed frames (scan --no-probe) group as ok ones
        if a.status not in ("failed", "missing") and a.kind == "image" and a.path and os.path.isfile(a.path):
            try:
                seq = find_sequence(a.path, sequence)
            except SequenceChoiceError:
                seq = None  # refused: plan_blends says so for this shot
        key = (seq.folder, seq.head, seq.tail) if seq is not None else None
        if key is not None and key in seen:
            left[asset_id] = seen[key]
            continue
        if key is not None:
            seen[key] = asset_id
        kept.append(asset_id)
    return kept, left


def plan_blends(ix: MediaIndexer, ids: list[int], out: Path, *, mode: str = "clip",
                sequence: str = "auto") -> list[PlanItem]:
    """What ``build_blends`` would write (its dry run): one .blend per shot, named as the workers name them;
    an existing file of that name is replaced; a shot whose file is failed or missing in the catalog fails,
    and so does a still image with no numbered neighbours when ``sequence`` is "sequence"."""
    from blender_mediaidx.batch import safe_name  # bpy-free

    check_mode(mode, sequence)
    items = []
    ids, left = one_per_sequence(ix, ids, sequence)
    for asset_id, kept in left.items():
        a = ix.get(asset_id)
        items.append(PlanItem("skip", a.path, asset_id,
                              reason=f"a frame of the image sequence built from asset {kept}"))
    for asset_id in ids:
        a = ix.get(asset_id)
        if a.status in ("failed", "missing"):
            items.append(PlanItem("fail", a.path, asset_id, reason=a.error or a.status))
            continue
        how = ""
        if a.kind == "image":
            how, refusal = _sequence_plan(a.path, sequence)
            if refusal:
                items.append(PlanItem("fail", a.path, asset_id, reason=refusal))
                continue
        dest = out / f"{safe_name(a.name)}_{asset_id}.blend"
        items.append(PlanItem("write", str(dest), asset_id, source=a.path,
                              reason=f"{mode} import{how}" + ("; replaces the file there" if dest.exists() else "")))
    return items


def build_blends(ix: MediaIndexer, ids: list[int], out: Path, *, mode: str = "clip", start_frame: int = 1,
                 workers: int = 2, bridge: str | None = None, timeout: float = 3600,
                 progress: Callable[[float, str], None] | None = None, sequence: str = "auto") -> dict[str, Any]:
    """One .blend per shot by ``workers`` headless Blender processes; ``progress(fraction, message)`` after each
    shot (from a reader thread). ``sequence`` (auto, single, sequence): what a numbered still image becomes."""
    from blender_mediaidx.batch import PROGRESS_PREFIX  # bpy-free

    done_lock = threading.Lock()
    done = [0]

    def read_stdout(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)
            if line.startswith(PROGRESS_PREFIX) and progress is not None:
                with done_lock:
                    done[0] += 1
                    progress(done[0] / len(ids), f"{done[0]}/{len(ids)} shots")

    check_mode(mode, sequence)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MediaIdxError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    ids, left = one_per_sequence(ix, ids, sequence)
    server = None
    thread = None
    if bridge is None:
        from .service import BridgeServer

        server = BridgeServer(ix.settings.catalog_path, bind="tcp://127.0.0.1:*", cache_dir=ix.settings.cache_dir)
        thread = threading.Thread(target=server.run, name="mediaidx-blend-bridge", daemon=True)
        thread.start()
        bridge = server.wait_ready()
    try:
        chunks = [ids[i::workers] for i in range(min(workers, len(ids)))]
        deadline = time.monotonic() + timeout  # one deadline for the whole batch, not one per worker in turn
        procs: list[subprocess.Popen[str]] = []
        built: list[Any] = []
        failed: list[Any] = []
        with tempfile.TemporaryDirectory(prefix="mediaidx-blend-") as tmp:
            try:
                for n, chunk in enumerate(chunks):
                    home = Path(tmp) / f"home{n}"
                    home.mkdir()
                    env = {**os.environ, "HOME": str(home)}
                    cmd = [sys.executable, "-m", "blender_mediaidx.batch", "--bridge", bridge, "--out", str(out),
                           "--mode", mode, "--sequence", sequence, "--start-frame", str(start_frame),
                           *map(str, chunk)]
                    procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                                  env=env))
                readers = []
                for p in procs:  # read as they go (progress), both pipes, so no worker blocks on a full one
                    outs: list[str] = []
                    errs: list[str] = []
                    t_out = threading.Thread(target=read_stdout, args=(p.stdout, outs), daemon=True)
                    t_err = threading.Thread(target=lambda s=p.stderr, e=errs: e.extend(s), daemon=True)
                    t_out.start()
                    t_err.start()
                    readers.append((outs, errs, t_out, t_err))
                for p, chunk, (outs, errs, t_out, t_err) in zip(procs, chunks, readers, strict=True):
                    p.wait(timeout=max(0.0, deadline - time.monotonic()))
                    t_out.join()
                    t_err.join()
                    stdout, stderr = "".join(outs), "".join(errs)
                    last = next((line for line in reversed(stdout.splitlines()) if line.startswith("{")), None)
                    if last is None:
                        failed += [{"asset": i, "error": f"worker failed: {stderr.strip()[-300:]}"} for i in chunk]
                        continue
                    result = json.loads(last)
                    built += result.get("built", [])
                    failed += result.get("failed", [])
            finally:
                for p in procs:  # timed out or interrupted: no worker outlives the batch (or its HOME)
                    if p.poll() is None:
                        p.kill()
                        p.wait()  # its pipes are drained by the reader threads
    except subprocess.TimeoutExpired:
        raise MediaIdxError(f"Blender workers did not finish within {timeout:g} s") from None
    finally:
        if server is not None:
            server.stop()
            thread.join(10)  # type: ignore[union-attr]
    return {"built": sorted(built, key=lambda b: b["asset"]), "failed": failed,
            "skipped": [{"asset": i, "in_sequence_of": k} for i, k in left.items()]}
