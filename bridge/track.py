"""`mediaidx track`: hero + witness camera solves and matchmove exports, run by headless Blender
(`python -m blender_mediaidx.batch track`, Blender as a Python module) in its own process and HOME.

The bridge side resolves catalog ids to paths, checks every input before a worker starts (``check_track``:
options, survey, output folder, plates), forwards progress lines and returns the worker's summary.
``plan_track`` is the dry run: the same checks, and every file the run would write, with nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import MediaIdxError, UsageError
from .models import PlanItem

if TYPE_CHECKING:
    from .indexer import MediaIndexer


@dataclass
class PlateFacts:
    """A plate as Blender's movie clip will see it: what the export's file names depend on."""

    path: str
    width: int  # 0 (with height) when not known before the run: see ``unknown``
    height: int
    pixel_aspect: float = 1.0  # given by hand, else the probe's sample aspect ratio: the worker sets the same
    pixel_aspect_given: bool = False  # --pixel-aspect / --witness-pixel-aspect, not the plate's metadata
    unknown: str | None = None  # why the size is not known before the run (our probe cannot read the image)


def resolve_plate(ix: MediaIndexer, ref: str) -> str:
    """A plate given as a path, or as a catalog id (then its path in the catalog, which must be here)."""
    if ref.isascii() and ref.isdigit() and not Path(ref).exists():
        asset = ix.get(int(ref))
        if asset.status in ("failed", "missing"):
            raise MediaIdxError(f"asset {ref} ({asset.path}): {asset.error or asset.status} in the catalog")
        if not Path(asset.path).is_file():
            raise MediaIdxError(f"asset {ref}: {asset.path} is not on this machine")
        return str(asset.path)
    if not Path(ref).exists():
        raise UsageError(f"{ref}: no such file")
    return str(Path(ref).resolve())


def plate_facts(path: str, pixel_aspect: float | None = None) -> PlateFacts:
    """Size and frame count of a plate as Blender's movie clip reads it, from the bridge's probe (no Blender):
    a still image is read from the first image of its numbered sequence (tracking.plan.clip_first_image, what
    the worker loads) and counts the numbered images from there (Blender's rule); an EXR's size is its data
    window (an overscan plate's is not the display window the probe reports); a movie's size is its stored
    pixels turned by its rotation (Blender 5 applies rotation, not EXIF orientation nor pixel aspect); the
    pixel aspect is the one the worker gives the tracking camera (tracking.plan's rule: the value given,
    ``pixel_aspect``, else the probe's). A still image our probe cannot read but Blender can (Cineon, ...)
    gets its size from the run (``unknown`` says why). Raises MediaIdxError where the worker would stop
    with "no such plate" or "no frames to track"."""
    from blender_mediaidx.core.sequences import clip_frame_count  # bpy-free
    from blender_mediaidx.tracking.plan import (
        choose_pixel_aspect,
        clip_first_image,
        exr_data_window,
        is_image,
    )

    from .errors import ProbeError
    from .probe import probe_file

    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise MediaIdxError(f"{path}: no such plate")
    first = clip_first_image(path)
    try:
        probe = probe_file(first)
    except (ProbeError, OSError) as exc:
        if not is_image(path) or not blender_only_still(first):
            # A movie (Blender reads movies through FFmpeg too), or a still whose bytes are not a format only
            # Blender reads (text named .png, an empty .jpg): the worker would stop on it, so the plan does.
            raise MediaIdxError(f"{name}: Blender cannot read it ({exc})") from None
        # Cineon, which Blender reads with its own reader: the worker goes on (pixel aspect 1 or the one
        # given); only the size, so the .chan's filmback, waits for the run.
        if clip_frame_count(first) <= 1:
            raise MediaIdxError(f"{name}: no frames to track") from None
        why = f"our probe (FFmpeg) cannot read {os.path.basename(first)}: {exc}"
        return PlateFacts(path, 0, 0, float(pixel_aspect) if pixel_aspect else 1.0, bool(pixel_aspect), why)
    video = next((s for s in probe.get("streams") or [] if s.get("type") == "video" and s.get("width")), None)
    if probe.get("kind") == "image":
        image = probe.get("image") or video or {}
        width, height, frames = image.get("width") or 0, image.get("height") or 0, clip_frame_count(first)
        window = exr_data_window(first)
        if window is not None:  # Blender's clip is the data window (overscan included), FFmpeg's the display
            width, height = window
    elif video is not None:
        width, height = video["width"], video["height"]
        if video.get("rotation") in (90, -90, 270, -270):
            width, height = height, width
        frames = video.get("frame_count") or 2  # unknown from the header: the worker counts them
    else:
        raise MediaIdxError(f"{name}: Blender cannot read it (no picture in it)")
    if not width or frames <= 1:
        raise MediaIdxError(f"{name}: no frames to track")
    return PlateFacts(path, int(width), int(height), choose_pixel_aspect(pixel_aspect, probe), bool(pixel_aspect))


# Still formats Blender reads that our probe (FFmpeg, through PyAV) cannot, by the magic bytes that open a file:
# Cineon (big- or little-endian). Checked by writing each format Blender writes (BMP, SGI, PNG, JPEG, JPEG 2000,
# Targa, Cineon, DPX, OpenEXR, Radiance HDR, TIFF, WebP) with bpy and probing it: only Cineon failed.
_BLENDER_ONLY_MAGIC = (b"\x80\x2a\x5f\xd7", b"\xd7\x5f\x2a\x80")


def blender_only_still(path: str) -> bool:
    """Whether ``path`` starts like a still format Blender reads and our probe does not (Cineon): the only
    files the dry run lets through with an unknown size. By content, not by name: a text file named .cin, or
    an empty one, is refused as the worker would stop on it."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head in _BLENDER_ONLY_MAGIC


def out_dir_error(out: Path) -> str | None:
    """Why the exports cannot go into ``out`` (None when it is a writable folder or can be made), without
    making it."""
    probe = out
    while not probe.exists():
        if probe.is_symlink():  # a dangling link: mkdir would fail on it
            return f"cannot create the output folder {out}: {probe} is a broken link"
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot create the output folder {out}: {probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "write into" if probe == out else "create"
        return f"cannot {what} the output folder {out}: {probe} is not writable"
    return None


def check_track(hero: str, out: Path, *, witnesses: list[str] | None = None, offsets: list[float] | None = None,
                survey: Path | None = None, focal_px: float | None = None, sensor_width: float | None = None,
                fps: str | None = None, refine: str = "FOCAL", formats: str | None = None,
                pixel_aspect: float | None = None, witness_pixel_aspect: list[float] | None = None
                ) -> list[PlateFacts]:
    """Every check a track run makes before its worker starts, in one place for the run and its dry run:
    the survey file, the options (the batch job's own rules), the output folder, then each plate. Raises
    MediaIdxError (UsageError for options) with one line; returns the plates, hero first. ``pixel_aspect``
    (hero) and ``witness_pixel_aspect`` (per witness, in order; 0: from its metadata) override the probe's."""
    from blender_mediaidx.core.track_formats import load_survey  # bpy-free
    from blender_mediaidx.tracking.plan import option_error, witness_pixel_aspects  # bpy-free

    witnesses = witnesses or []
    if survey is not None:
        try:
            load_survey(survey)
        except ValueError as exc:
            raise MediaIdxError(f"survey {exc}") from None
    problem = option_error(witnesses=len(witnesses), offsets=len(offsets or []), fps=fps, formats=formats,
                           refine=refine, sensor_width=sensor_width, focal_px=focal_px, pixel_aspect=pixel_aspect,
                           witness_pixel_aspect=witness_pixel_aspect)
    if problem:
        raise UsageError(problem)
    problem = out_dir_error(out)
    if problem:
        raise MediaIdxError(problem)
    aspects = [pixel_aspect, *witness_pixel_aspects(witness_pixel_aspect, len(witnesses))]
    return [plate_facts(p, pa) for p, pa in zip([hero, *witnesses], aspects, strict=True)]


def plan_track(hero: str, out: Path, *, witnesses: list[str] | None = None, offsets: list[float] | None = None,
               survey: Path | None = None, focal_px: float | None = None, sensor_width: float | None = None,
               fps: str | None = None, refine: str = "FOCAL", formats: str | None = None,
               save_blend: bool = False, pixel_aspect: float | None = None,
               witness_pixel_aspect: list[float] | None = None) -> list[PlanItem]:
    """What ``run_track`` would write (its dry run): each camera's files under the names the export gives
    them, shot.json and, with ``save_blend``, shot.blend. Nothing is written and ``out`` is not made. Every
    name is known before the solve (the .chan's filmback is not solved: see blender_mediaidx.tracking.plan);
    a witness whose solve fails gets no files in the real run."""
    from blender_mediaidx.core.track_formats import FORMATS  # bpy-free
    from blender_mediaidx.tracking import plan  # bpy-free

    plates = check_track(hero, out, witnesses=witnesses, offsets=offsets, survey=survey, focal_px=focal_px,
                         sensor_width=sensor_width, fps=fps, refine=refine, formats=formats,
                         pixel_aspect=pixel_aspect, witness_pixel_aspect=witness_pixel_aspect)
    kinds = tuple(formats.split(",")) if formats is not None else FORMATS
    items: list[PlanItem] = []
    planned: set[str] = set()

    previous = plan.previous_exports(out)
    earlier = {p.casefold() for p in previous}

    def add(fname: str, kind: str, source: str | None, reason: str, *, may_fail: bool = False) -> None:
        dest = out / fname
        planned.add(fname)
        if dest.exists():
            # A witness that does not solve writes nothing, and the earlier run's file under this name is not in
            # the new shot.json: the run removes it (the folder holds what shot.json lists).
            if may_fail and fname.casefold() in earlier:
                reason += " (the earlier file: removed if it does not solve)"
            reason += "; replaces the file there"
        items.append(PlanItem("write", str(dest), source=source, kind=kind, reason=reason))

    unknown_chans: list[str] = []
    for cam, facts in zip(plan.camera_names(len(plates) - 1), plates, strict=True):
        sw, sh = plan.filmback(sensor_width, facts.width, facts.height, facts.pixel_aspect)
        role = "hero" if cam == "hero" else "witness"
        squeeze = f", pixel aspect {facts.pixel_aspect:.4g}" if facts.pixel_aspect != 1 else ""
        if facts.pixel_aspect_given:
            squeeze = f", pixel aspect {facts.pixel_aspect:.4g} (given)"
        if sh is None:
            why = (f"{cam} camera (size read by Blender in the run, so the filmback height '{plan.UNKNOWN}' "
                   f"too: {facts.unknown}{squeeze}, filmback width {sw:g} mm)")
            unknown_chans.append(f"{plan.safe(cam)}_ZXY_")
        else:
            why = f"{cam} camera ({facts.width}x{facts.height}{squeeze}, filmback {sw:g}x{sh:.4g} mm)"
        if role == "witness":
            why += ", if it solves"
        for kind, fname in plan.camera_files(plan.safe(cam), sw, sh, kinds).items():
            add(fname, kind, facts.path, why, may_fail=role == "witness")
    add(plan.SHOT_MANIFEST, "manifest", None, "the shot manifest")
    if save_blend:
        add(plan.SHOT_BLEND, "blend", None, "the solved scene")
    # What the previous run exported here (its shot.json) and this one does not write: removed, so the folder
    # holds what the new shot.json lists (a witness that no longer solves, a .chan under an older filmback).
    for fname in plan.stale_exports(out, previous, planned | {plan.SHOT_BLEND}):
        reason = "listed by the previous shot.json, not written by this run"
        if fname.endswith(".chan") and any(fname.startswith(p) for p in unknown_chans):
            reason += " (unless the filmback Blender reads gives the same name)"
        items.append(PlanItem("remove", str(out / fname), kind="previous export", reason=reason))
    return items


def run_track(hero: str, out: Path, *, witnesses: list[str] | None = None, offsets: list[float] | None = None,
              survey: Path | None = None, focal_px: float | None = None, sensor_width: float | None = None,
              fps: str | None = None, refine: str = "FOCAL", name: str = "shot", formats: str | None = None,
              save_blend: bool = False, timeout: float = 3600, pixel_aspect: float | None = None,
              witness_pixel_aspect: list[float] | None = None,
              progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    # Checked here, in one line each, before a Blender worker starts (the dry run checks the same).
    check_track(hero, out, witnesses=witnesses, offsets=offsets, survey=survey, focal_px=focal_px,
                sensor_width=sensor_width, fps=fps, refine=refine, formats=formats, pixel_aspect=pixel_aspect,
                witness_pixel_aspect=witness_pixel_aspect)
    cmd = [sys.executable, "-m", "blender_mediaidx.batch", "track", hero, "--out", str(out), "--refine", refine,
           "--name", name]
    for w in witnesses or []:
        cmd += ["--witness", w]
    for o in offsets or []:
        cmd += ["--offset", repr(float(o))]
    for pa in witness_pixel_aspect or []:
        cmd += ["--witness-pixel-aspect", repr(float(pa))]
    if pixel_aspect is not None:
        cmd += ["--pixel-aspect", repr(float(pixel_aspect))]
    for flag, value in (("--survey", survey), ("--focal-px", focal_px), ("--sensor-width", sensor_width),
                        ("--fps", fps), ("--formats", formats)):
        if value is not None:
            cmd += [flag, str(value)]
    if save_blend:
        cmd.append("--save-blend")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MediaIdxError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    with tempfile.TemporaryDirectory(prefix="mediaidx-track-") as home, \
            tempfile.TemporaryFile("w+", prefix="mediaidx-track-log-") as log:
        env = {**os.environ, "HOME": home}
        # libmv logs a lot on stderr: a file, not a pipe nobody drains while we read stdout.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        summary: dict[str, Any] | None = None
        # The deadline covers the whole run: a worker that hangs without writing or exiting would otherwise
        # block the read loop below for ever (a stuck render-farm job instead of an error).
        expired = threading.Event()

        def stop() -> None:
            expired.set()
            proc.kill()

        watchdog = threading.Timer(timeout, stop)
        watchdog.daemon = True
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if not line.startswith("{"):
                    continue
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "progress" in msg:
                    if progress:
                        progress(float(msg["progress"]), str(msg.get("message", "")))
                else:
                    summary = msg
            proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:  # interrupted (Ctrl-C): the worker goes too
                proc.kill()
                proc.wait()
        if expired.is_set() and summary is None:
            raise MediaIdxError(f"tracking did not finish within {timeout:g} s (the Blender worker was stopped)")
        log.seek(0)
        stderr = log.read()
    if summary is None:
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        usage = [ln for ln in lines if ln.startswith("blender_mediaidx.batch track: error: ")]
        if usage:  # the worker refused an option: its own one-line message
            raise MediaIdxError(usage[-1].split(": error: ", 1)[1])
        tail = lines[-3:]
        raise MediaIdxError("the Blender worker failed: " + (" | ".join(tail) or f"exit code {proc.returncode}"))
    return summary
