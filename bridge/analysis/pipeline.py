"""One clip, end to end: shots, key frames, hero, and the pictures written from them.

This is what the CLI commands, ``MediaIndexer.analyze`` and the scan's worker processes call. It decodes
the clip once (with the loop filter on: these pictures are looked at) and seeks only for the frames it
writes at full quality.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .decode import NamedFile, Source, _path, grab_frames, is_path, open_video, rotate, video_rotation
from .keyframes import CandidatePool, Pick, pick_hero, select_keyframes
from .sheet import contact_sheet, timecode
from .shots import ShotResult, detect_shots

ANALYSIS_VERSION = 1         # bump when results would change; the catalog records it


@dataclass
class Analysis:
    shots: ShotResult
    keyframes: list[Pick]
    hero: Pick | None
    rotation: float
    elapsed: float
    source: Any = None         # what was decoded (a path or file object): the pictures are read from it again

    @property
    def path(self) -> str:
        return self.shots.info.path

    def to_dict(self) -> dict[str, Any]:
        by_shot = {p.shot: p.to_dict() for p in self.keyframes}
        shots = []
        for s in self.shots.shots:
            d = s.to_dict()
            d["keyframe"] = by_shot.get(s.index)
            shots.append(d)
        return {"file": self.path, "video": self.shots.info.to_dict(), "frames": self.shots.frames,
                "elapsed": round(self.elapsed, 3), "shots": shots,
                "hero": self.hero.to_dict() if self.hero else None, "version": ANALYSIS_VERSION}


def analyze_video(source: Source, *, min_shot: float = 0.3, threads: int = 0, name: str | None = None,
                  rotation: float | None = None) -> Analysis:
    """Shots, one key frame per shot and the hero frame of ``source``, with their scores (``threads``:
    decoder threads, 0 = one per CPU).

    ``source`` is a path or a seekable file object (a remote file: the whole clip is read, in order, then
    a few seeks for the pictures); ``name`` names a file object in messages and results (its URL).
    ``rotation`` is the display rotation when the caller has probed the file already (else it is probed).
    """
    started = time.perf_counter()
    src: Any = _path(source) if is_path(source) else (NamedFile(source, name) if name else source)  # type: ignore[arg-type]
    container, _stream, info = open_video(src)  # fails early, and clearly, on what is not a video
    container.close()
    if rotation is None:
        rotation = video_rotation(src)
    pool = CandidatePool(info.fps, rotation=rotation)
    result = detect_shots(src, fast=False, min_shot=min_shot, on_frame=pool, keep_frame=True, threads=threads)
    result.info.rotation = rotation
    picks = select_keyframes(src, result, pool)
    hero = pick_hero(picks, result.shots)
    return Analysis(result, picks, hero, rotation, time.perf_counter() - started, src)


PICTURE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}


def picture_format(dest: str | os.PathLike[str]) -> str:
    """The PIL format for ``dest``'s extension; a UsageError for any other (a JPEG named .gif or .tif would
    be a mislabelled file that other tools refuse or misread). Callers check before a long analysis."""
    from ..errors import UsageError

    fmt = PICTURE_FORMATS.get(Path(dest).suffix.lower())
    if fmt is None:
        raise UsageError(f"{dest}: cannot write {Path(dest).suffix or 'a file without an extension'}: "
                         "give a .jpg, .png or .webp name")
    return fmt


def save_picture(rgb: np.ndarray, dest: str | os.PathLike[str], *, quality: int = 90) -> Path:
    """Write beside dest, then rename (a reader never sees half a file). Format from the extension."""
    dest = Path(dest)
    fmt = picture_format(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            img = Image.fromarray(rgb)
            if fmt == "PNG":
                img.save(fh, fmt)
            else:
                img.save(fh, fmt, quality=quality)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return dest


def full_pictures(analysis: Analysis, picks: list[Pick], max_side: int) -> dict[int, np.ndarray]:
    """The picks' frames decoded again at up to ``max_side`` (falls back to the scoring picture)."""
    grabbed = grab_frames(analysis.source if analysis.source is not None else analysis.path,
                          [p.time for p in picks], max_side)
    out = {}
    for p in picks:
        img = grabbed.get(p.time)
        out[p.frame] = rotate(img, analysis.rotation) if img is not None else p.image
    return out


def write_hero(analysis: Analysis, dest: str | os.PathLike[str], *, max_side: int = 1920, quality: int = 90
               ) -> Path | None:
    if analysis.hero is None:
        return None
    img = full_pictures(analysis, [analysis.hero], max_side)[analysis.hero.frame]
    return save_picture(img, dest, quality=quality)


def write_keyframes(analysis: Analysis, folder: str | os.PathLike[str], *, max_side: int = 1280) -> list[Path]:
    """``shotNNN_fFFFFFF.jpg`` per key frame; returns the paths in shot order."""
    folder = Path(folder)
    pictures = full_pictures(analysis, analysis.keyframes, max_side)
    return [save_picture(pictures[p.frame], folder / f"shot{p.shot:03d}_f{p.frame:06d}.jpg")
            for p in analysis.keyframes]


def write_contact_sheet(analysis: Analysis, dest: str | os.PathLike[str], *, columns: int = 5,
                        thumb_width: int = 240) -> Path:
    fps = analysis.shots.info.fps
    labels = [f"#{p.shot + 1}  {timecode(p.time, fps)}" for p in analysis.keyframes]
    title = f"{Path(analysis.path).name}  {len(analysis.shots.shots)} shots  {analysis.shots.frames / fps:.1f} s"
    sheet = contact_sheet([p.image for p in analysis.keyframes], labels, title, columns=columns,
                          thumb_width=thumb_width)
    return save_picture(np.asarray(sheet), dest)
