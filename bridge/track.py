"""`mediaidx track`: hero + witness camera solves and matchmove exports, run by headless Blender
(`python -m blender_mediaidx.batch track`, Blender as a Python module) in its own process and HOME.

The bridge side resolves catalog ids to paths, forwards progress lines and returns the worker's summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import MediaIdxError


def run_track(hero: str, out: Path, *, witnesses: list[str] | None = None, offsets: list[float] | None = None,
              survey: Path | None = None, focal_px: float | None = None, sensor_width: float | None = None,
              fps: str | None = None, refine: str = "FOCAL", name: str = "shot", formats: str | None = None,
              save_blend: bool = False, timeout: float = 3600,
              progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    from blender_mediaidx.core.track_formats import load_survey  # bpy-free

    if survey is not None:  # checked here, in one line, before a Blender worker starts
        try:
            load_survey(survey)
        except ValueError as exc:
            raise MediaIdxError(f"survey {exc}") from None
    cmd = [sys.executable, "-m", "blender_mediaidx.batch", "track", hero, "--out", str(out), "--refine", refine,
           "--name", name]
    for w in witnesses or []:
        cmd += ["--witness", w]
    for o in offsets or []:
        cmd += ["--offset", repr(float(o))]
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
