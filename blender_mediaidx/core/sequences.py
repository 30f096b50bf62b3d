"""Numbered image sequences (plate.1001.exr ... plate.1096.exr) from any one of their frames. No bpy."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

# name + separator + frame digits + extension; the last run of digits before the extension is the frame.
_FRAME = re.compile(r"^(?P<head>.*?)(?P<digits>\d+)(?P<tail>\.[A-Za-z0-9]+)$")


@dataclass
class ImageSequence:
    folder: str
    head: str            # "plate."
    tail: str            # ".exr"
    padding: int         # 4 for 1001
    first: int
    last: int
    missing: list[int] = field(default_factory=list)

    @property
    def frame_count(self) -> int:
        return self.last - self.first + 1

    def path(self, frame: int) -> str:
        return os.path.join(self.folder, f"{self.head}{frame:0{self.padding}d}{self.tail}")

    @property
    def pattern(self) -> str:
        """The printf-style pattern other tools use: plate.%04d.exr."""
        return os.path.join(self.folder, f"{self.head}%0{self.padding}d{self.tail}")

    @property
    def hash_pattern(self) -> str:
        """The same with # padding, as Nuke and most matchmove tools write it: plate.####.exr."""
        return os.path.join(self.folder, f"{self.head}{'#' * self.padding}{self.tail}")

    def files(self) -> list[str]:
        gaps = set(self.missing)
        return [os.path.basename(self.path(f)) for f in range(self.first, self.last + 1) if f not in gaps]

    def held_files(self) -> list[str]:
        """One file name per frame first..last, a missing frame holding the one before it: a strip built from
        these keeps every frame after a gap at its own time (skipping gaps would pull the rest earlier)."""
        gaps = set(self.missing)
        names: list[str] = []
        for f in range(self.first, self.last + 1):
            names.append(names[-1] if f in gaps else os.path.basename(self.path(f)))
        return names


def find_sequence(path: str) -> ImageSequence | None:
    """The sequence ``path`` belongs to, or None when it is a single image (no frame number, or alone)."""
    folder, name = os.path.split(os.path.abspath(path))
    m = _FRAME.match(name)
    if not m:
        return None
    head, tail = m.group("head"), m.group("tail")
    frames: dict[int, int] = {}
    pattern = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + "$")
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    for n in names:
        fm = pattern.match(n)
        if fm:
            frames[int(fm.group(1))] = len(fm.group(1))
    if len(frames) < 2:
        return None
    first, last = min(frames), max(frames)
    padding = min(frames.values())
    missing = [f for f in range(first, last + 1) if f not in frames]
    return ImageSequence(folder, head, tail, padding, first, last, missing)
