"""Numbered image sequences (plate.1001.exr ... plate.1096.exr) from any one of their frames, and the rule
that tells a plate from a folder of camera photos (IMG_0001.JPG, IMG_0002.JPG: two photos). No bpy."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

# name + separator + frame digits + extension; the last run of digits before the extension is the frame.
_FRAME = re.compile(r"^(?P<head>.*?)(?P<digits>\d+)(?P<tail>\.[A-Za-z0-9]+)$")
FRAME_NAME = _FRAME  # for the tracking plan's run of frames (tracking.plan.run_start)


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


# What a numbered still image is imported as: "auto" decides by its name and format (plate_naming), "single"
# is the one file, "sequence" takes every numbered sibling (an error when there is none). One list for the
# operators, the panel and the batch job (Blender EnumProperty items: identifier, name, description).
SEQUENCE_CHOICES = ("auto", "single", "sequence")
SEQUENCE_CHOICE_ITEMS = (
    ("auto", "Auto", "A sequence when the name (name.1001.ext) or the format (EXR, DPX, PNG, TIFF...) says plate; "
                     "a camera photo (IMG_0001.JPG) stays one image"),
    ("single", "Single Image", "Only this file, even with numbered neighbours"),
    ("sequence", "Image Sequence", "Every numbered neighbour of this file as frames (a timelapse, a photo "
                                   "sequence); an error when it has none"),
)
# Formats plates and renders come in: numbered siblings in these are frames of one shot (render_0001.png).
PLATE_EXTS = frozenset(("exr", "dpx", "cin", "tif", "tiff", "png", "tga", "hdr", "jp2", "j2c", "sgi", "rgb", "bw",
                        "bmp"))
# Formats cameras write photos in, with a counter in the name: IMG_0001.JPG beside IMG_0002.JPG are two photos.
# Auto treats these (and any format not in PLATE_EXTS: webp, avif, psd...) as single unless name.NUMBER.ext.
PHOTO_EXTS = frozenset(("jpg", "jpeg", "heic", "heif", "dng", "cr2", "cr3", "crw", "nef", "nrw", "arw", "srf",
                        "sr2", "raf", "orf", "rw2", "pef", "srw", "x3f", "3fr", "iiq", "rwl", "erf", "kdc", "mrw"))


class SequenceChoiceError(ValueError):
    """An explicit ``sequence`` choice that the files on disk cannot honour; the message is for the user."""


def numbered_sequence(path: str) -> ImageSequence | None:
    """Every numbered sibling of ``path`` (same name and extension, other frame number), whatever the naming:
    what Blender's movie clip reads as frames. None when it has no frame number or is alone."""
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


# Counters cameras and phones give their photos (IMG_0001.JPG, DSC01234.JPG, DJI_0001.JPG): numbered, but each
# file is one picture. They name the file up to the counter, so a frame number set off by a dot after more name
# (IMG_plate.1001.png, DJI_0001_plate.1001.png, img.1001.exr) is a plate named by a person: the dot wins.
_CAMERA_NAME = re.compile(r"^(?:IMG|_MG|MVI|DSC[FN]?|_DSC|DJI|PXL|GOPR)(?![A-Za-z])", re.IGNORECASE)
# Names screenshot and messenger tools give, whatever the separator: "Screenshot 2023-11-01 at 10.10.10.png" has
# its last number set off by a dot, but it is a time of day, never a frame (these tools do not write frames).
_TOOL_NAME = re.compile(r"^(?:Screenshot|Screen Shot|Screen Recording|WhatsApp Image)", re.IGNORECASE)


def plate_naming_reason(seq: ImageSequence) -> str | None:
    """Why auto leaves numbered siblings single (photos, not a plate), in the words of the rule; None when they
    are a plate. The one rule ``plate_naming`` and the importer's note on a single image both use."""
    if _TOOL_NAME.match(seq.head):
        return "named like screenshots"
    if len(seq.files()) * 2 < seq.frame_count:
        # two screenshots taken at 10.10.10 and 10.10.42 are not frames 10-42 with 31 missing
        return "numbered far apart (fewer than half the numbers between the first and the last)"
    if seq.head.endswith("."):  # the VFX convention (plate.1001.exr), whatever the name before it or the format
        return None
    if _CAMERA_NAME.match(seq.head):
        return "named like camera photos"
    if seq.tail[1:].lower() in PLATE_EXTS:
        return None
    return "not named like a plate (name.0001.ext) and not in a plate format"


def plate_naming(seq: ImageSequence) -> bool:
    """Whether numbered siblings are a plate rather than a folder of photos: the frame number is set off by a
    dot (plate.1001.exr, shot_010_v002.0101.dpx, IMG_plate.1001.png: the VFX convention, whatever the format
    or the name before it) or the format is one plates and renders come in (render_0001.png), and at least half
    the frames between the first and the last are there. A camera's IMG_0001.JPG / DSC01234.PNG (its counter
    not set off by a dot), or a screenshot, is never a plate on auto."""
    return plate_naming_reason(seq) is None


def find_sequence(path: str, choice: str = "auto") -> ImageSequence | None:
    """The sequence ``path`` is imported as under ``choice`` (SEQUENCE_CHOICES), or None for the single image.

    auto: a sequence only when its naming or format says plate (``plate_naming``), so a phone photo beside
    the next one stays that one photo; a DSLR timelapse named like photos needs ``sequence``.
    sequence: every numbered sibling; SequenceChoiceError when there is none, rather than quietly importing
    one image (and setting a one-frame scene) when the user asked for frames.
    """
    if choice not in SEQUENCE_CHOICES:
        raise ValueError(f"unknown sequence choice {choice!r} (use {', '.join(SEQUENCE_CHOICES)})")
    if choice == "single":
        return None
    seq = numbered_sequence(path)
    if choice == "sequence":
        if seq is None:
            raise SequenceChoiceError(
                f"{os.path.basename(path)}: not an image sequence (no other image is named like it with another "
                "frame number); import it as a single image")
        return seq
    return seq if seq is not None and plate_naming(seq) else None


def clip_frame_count(path: str) -> int:
    """How many frames Blender's movie clip reads from the still image ``path``: its own number and the ones
    after it, same padding, up to the first gap (1 without a frame number)."""
    folder, name = os.path.split(os.path.abspath(path))
    m = _FRAME.match(name)
    if not m:
        return 1
    head, digits, tail = m.group("head"), m.group("digits"), m.group("tail")
    n = int(digits)
    count = 0
    while os.path.exists(os.path.join(folder, f"{head}{n + count:0{len(digits)}d}{tail}")):
        count += 1
    return max(count, 1)
