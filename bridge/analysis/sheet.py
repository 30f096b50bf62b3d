"""Contact sheets: a clip's key frames in a grid, each labelled with its shot and timecode.

Geometry (documented so callers can rely on it): ``columns`` cells per row (fewer when there are fewer key
frames), each ``thumb_width`` wide and as tall as the clip's aspect ratio makes it, plus a LABEL-pixel
label strip; PAD pixels around and between cells; a HEADER-pixel title strip on top.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PAD = 8
LABEL = 18
HEADER = 26
BACKGROUND = (24, 24, 24)


def timecode(seconds: float, fps: float) -> str:
    """HH:MM:SS:FF at the clip's (rounded) frame rate."""
    rate = max(1, round(fps))
    frames = round(seconds * fps)
    ff = frames % rate
    total = frames // rate
    return f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}:{ff:02d}"


def sheet_size(count: int, aspect: float, *, columns: int = 5, thumb_width: int = 240) -> tuple[int, int]:
    """(width, height) of the sheet for ``count`` key frames of width/height ``aspect``."""
    cols = max(1, min(columns, count))
    rows = max(1, math.ceil(count / cols))
    th = max(2, round(thumb_width / aspect))
    return PAD + cols * (thumb_width + PAD), HEADER + PAD + rows * (th + LABEL + PAD)


def contact_sheet(images: Sequence[np.ndarray], labels: Sequence[str], title: str, *, columns: int = 5,
                  thumb_width: int = 240) -> Image.Image:
    """The sheet as a PIL image; ``images`` are RGB arrays (any size; they are fitted to the cell)."""
    if not images:
        raise ValueError("no key frames for a contact sheet")
    h0, w0 = images[0].shape[:2]
    aspect = w0 / h0
    width, height = sheet_size(len(images), aspect, columns=columns, thumb_width=thumb_width)
    th = max(2, round(thumb_width / aspect))
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    draw.text((PAD, 6), title[:160], fill=(235, 235, 235), font=font)
    cols = max(1, min(columns, len(images)))
    for i, (arr, label) in enumerate(zip(images, labels, strict=True)):
        r, c = divmod(i, cols)
        x = PAD + c * (thumb_width + PAD)
        y = HEADER + PAD + r * (th + LABEL + PAD)
        im = Image.fromarray(arr)
        im.thumbnail((thumb_width, th), Image.Resampling.LANCZOS)
        sheet.paste(im, (x + (thumb_width - im.width) // 2, y + (th - im.height) // 2))
        draw.text((x + 2, y + th + 3), label, fill=(210, 210, 210), font=font)
    return sheet
