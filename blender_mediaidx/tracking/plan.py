"""The names of the files a tracking export writes, bpy-free: `export.py` writes under these names and the
bridge's `mediaidx track --dry-run` lists them, so a plan and a real run cannot drift apart.

Every name is known before the solve. The .chan name carries the filmback (`NAME_ZXY_<w>x<h>.chan`, as
docs/tracking.md documents it), and the filmback is not solved: the width is --sensor-width or Blender's
default for a tracking camera (35 mm), the height follows from it, the clip's size and its pixel aspect. Blender
does not read a plate's pixel aspect: `pixel_aspect_from_probe` gives it from the bridge's probe (the sample
aspect ratio), for the worker that sets the tracking camera and for the dry run alike. A transcode often drops
that metadata: `--pixel-aspect` (hero) and `--witness-pixel-aspect` (per witness) give it by hand, and the plan's
filmback follows the value given (``choose_pixel_aspect``).

The plate's size is the one Blender's movie clip reads: an OpenEXR with overscan is its data window, where the
probe (FFmpeg) reports the display window (``exr_data_window``). Where the probe cannot read a still image that
Blender reads (Cineon, ...), the .chan's filmback height is not known before the run (``UNKNOWN``).
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path
from typing import Any

from ..core.sequences import FRAME_NAME, numbered_sequence
from ..core.track_formats import FORMATS

# Still-image formats Blender reads (the importer's and the tracking worker's list): only these can make numbered
# siblings an image sequence (take5.mov beside take6.mov is two movies, not a two-frame sequence).
IMAGE_EXTS = frozenset(("png", "jpg", "jpeg", "exr", "tif", "tiff", "dpx", "cin", "tga", "bmp", "webp", "hdr", "bw",
                        "jp2", "j2c", "sgi", "rgb", "psd", "heic", "avif"))

# Blender's MovieTrackingCamera: sensor_width defaults to 35 mm (BKE_tracking_settings_init) and is clamped
# to 0..500 mm; a 0 or negative width would leave a filmback nobody can use.
DEFAULT_SENSOR_WIDTH_MM = 35.0
MAX_SENSOR_WIDTH_MM = 500.0
# MovieTrackingCamera.pixel_aspect is clamped to 0.1.. (RNA hard minimum); its default is 1.
MIN_PIXEL_ASPECT = 0.1
# A pixel aspect given by hand: Blender's minimum, and a 10x squeeze is beyond any lens or video standard (a
# value outside is a typo, e.g. a display aspect 2.39 meant as 0.239 or a percentage).
MAX_PIXEL_ASPECT = 10.0
SHOT_MANIFEST = "shot.json"
SHOT_BLEND = "shot.blend"
SHOT_SCHEMA = "mediaidx.shot/1"  # shot.json's "schema": a manifest we wrote
UNKNOWN = "?"  # the filmback height in a planned .chan name when the plate's size is not known before the run


def is_image(path: str) -> bool:
    """A still image by its extension (IMAGE_EXTS): what Blender's clip reads as a numbered sequence."""
    return os.path.splitext(path)[1].lstrip(".").lower() in IMAGE_EXTS


def clip_first_image(path: str) -> str:
    """The file the tracking worker loads for the plate ``path``: the first image of the contiguous run of
    numbered images ``path`` is in (a sequence given by a later frame is still tracked from its first, as the
    importer does; Blender's clip stops at a gap, so a frame after a gap starts its own run), else ``path``."""
    if not is_image(path) or numbered_sequence(path) is None:
        return path
    return run_start(path)[0]


def run_start(path: str) -> tuple[str, int]:
    """(first file, its frame number) of the run of numbered images ``path`` is in: its number and the ones
    before it, same padding, back to a gap (what Blender's clip reads forward from, ``clip_frame_count``)."""
    folder, name = os.path.split(path)
    m = FRAME_NAME.match(name)
    if not m:
        return path, 1
    head, digits, tail = m.group("head"), m.group("digits"), m.group("tail")
    n, width = int(digits), len(digits)
    while n > 0:
        # Blender reads forward with the loaded file's digit count as a minimum width (frame9.png, frame10.png;
        # plate.999, plate.1000), so walking back the previous frame may have fewer digits
        width_before = next((w for w in range(width, 0, -1)
                             if os.path.exists(os.path.join(folder, f"{head}{n - 1:0{w}d}{tail}"))), None)
        if width_before is None:
            break
        n, width = n - 1, width_before
    return os.path.join(folder, f"{head}{n:0{width}d}{tail}"), n


def clip_frame_start(path: str) -> int:
    """The clip's frame_start for the file the worker loads (``clip_first_image``): its own frame number, so
    scene frames, plate.json and the cameras agree with the file names (1 for a movie or a lone image)."""
    if not is_image(path) or numbered_sequence(path) is None:
        return 1
    return run_start(path)[1]


_EXR_MAGIC = 20000630
_EXR_HEADER_MAX = 1 << 20  # the attribute list of a real header is a few KiB; a bigger one is not a header


def exr_data_window(path: str) -> tuple[int, int] | None:
    """(width, height) of an OpenEXR's data window, the pixels Blender loads (its clip size); None when ``path``
    is not a readable EXR. FFmpeg's probe reports the display window, which an EXR with overscan (or a crop)
    does not match. A short parse of the header's attribute list (name, type, size, value; an empty name ends
    it; a multi-part file starts with its first part's): the dataWindow box2i is all we need, so no OpenEXR
    library (not in the bridge's dependencies, and bpy-free code cannot use Blender's)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or struct.unpack("<i", magic)[0] != _EXR_MAGIC:
                return None  # not an EXR: 4 bytes read, not a MiB of every still
            head = magic + f.read(_EXR_HEADER_MAX - 4)
    except OSError:
        return None
    if len(head) < 8:
        return None
    pos = 8
    while pos < len(head):
        end = head.find(b"\0", pos)
        if end <= pos:  # the empty name that ends the header, or no terminator
            return None
        name = head[pos:end]
        tend = head.find(b"\0", end + 1)
        if tend < 0 or tend + 5 > len(head):
            return None
        (size,) = struct.unpack_from("<i", head, tend + 1)
        value = tend + 5
        if size < 0 or value + size > len(head):
            return None
        if name == b"dataWindow" and head[end + 1:tend] == b"box2i" and size == 16:
            x0, y0, x1, y1 = struct.unpack_from("<4i", head, value)
            if x1 < x0 or y1 < y0:
                return None
            return x1 - x0 + 1, y1 - y0 + 1
        pos = value + size
    return None


def safe(name: str) -> str:
    """A file-name-safe camera name (the prefix of every file a camera gets)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "camera"


def camera_names(witnesses: int) -> list[str]:
    """The batch job's camera names: hero, witness1, witness2, ..."""
    return ["hero", *(f"witness{i + 1}" for i in range(witnesses))]


def sensor_width_error(value: float | None) -> str | None:
    """Why ``value`` cannot be a --sensor-width (None when it can, or when not given)."""
    if value is None:
        return None
    if not 0 < value <= MAX_SENSOR_WIDTH_MM:  # also refuses NaN
        return f"--sensor-width {value:g} is not a sensor width in mm (0 < width <= {MAX_SENSOR_WIDTH_MM:g})"
    return None


def _float32(value: float) -> float:
    """The value Blender stores (its camera properties are 32-bit floats)."""
    return struct.unpack("f", struct.pack("f", value))[0]


def pixel_aspect_from_probe(probe: dict[str, Any] | None) -> float:
    """The tracking camera's pixel aspect for a plate (width / height of a stored pixel on screen): the probe's
    sample aspect ratio, inverted for a movie turned by 90 degrees (Blender's clip turns it), 1 without one.
    The same rule as the importer's (core.scene_setup.plate_settings), so a plate imported by hand and one
    tracked by the batch job solve alike."""
    from ..core.scene_setup import plate_settings

    probe = probe or {}
    s = plate_settings({"probe": probe, "kind": probe.get("kind")})
    return s.pixel_aspect_x / s.pixel_aspect_y


def pixel_aspect_error(value: float | None, flag: str = "--pixel-aspect", *, zero_ok: bool = False) -> str | None:
    """Why ``value`` cannot be a pixel aspect given by hand (None when it can, or when not given; with
    ``zero_ok``, 0 means "from the probe" and is fine too)."""
    if value is None or (zero_ok and value == 0):
        return None
    if not MIN_PIXEL_ASPECT <= value <= MAX_PIXEL_ASPECT:  # also refuses NaN
        zero = "0 (from the plate's metadata) or " if zero_ok else ""
        return (f"{flag} {value:g} is not a pixel aspect (width / height of a stored pixel: {zero}"
                f"{MIN_PIXEL_ASPECT:g}..{MAX_PIXEL_ASPECT:g}, e.g. 2 for a 2x anamorphic squeeze)")
    return None


def witness_pixel_aspects(values: list[float] | None, witnesses: int) -> list[float | None]:
    """The pixel aspect given for each witness, in order: None (from the probe) where none or 0 was given."""
    given = [v or None for v in values or []]
    return (given + [None] * witnesses)[:witnesses]


def choose_pixel_aspect(given: float | None, probe: dict[str, Any] | None) -> float:
    """The tracking camera's pixel aspect: the value given by hand (--pixel-aspect; None or 0: not given), else
    the probe's (``pixel_aspect_from_probe``). The worker and the dry run both ask this function."""
    return float(given) if given else pixel_aspect_from_probe(probe)


def blender_pixel_aspect(pixel_aspect: float) -> float:
    """The value MovieTrackingCamera.pixel_aspect stores for ``pixel_aspect`` (clamped, 32-bit)."""
    return _float32(max(pixel_aspect, MIN_PIXEL_ASPECT))


def filmback(sensor_width_mm: float | None, width: int, height: int,
             pixel_aspect: float = 1.0) -> tuple[float, float | None]:
    """(sensor width, sensor height) in mm as export.lens_info computes them from the tracking camera: the
    height covers the plate's rows, each 1 / pixel_aspect of a column wide on screen, so sensor width / height
    is the picture's aspect on screen (an anamorphic plate's de-squeezed aspect). The height is None when the
    plate's size is not known (0)."""
    sw = _float32(sensor_width_mm) if sensor_width_mm else DEFAULT_SENSOR_WIDTH_MM
    if not width or not height:
        return sw, None
    return sw, sw * height / (width * blender_pixel_aspect(pixel_aspect))


def chan_name(name: str, sensor_width_mm: float, sensor_height_mm: float | None) -> str:
    """NAME_ZXY_<w>x<h>.chan; ``UNKNOWN`` for a height not known before the run (a plan only)."""
    h = UNKNOWN if sensor_height_mm is None else f"{sensor_height_mm:.3g}"
    return f"{name}_ZXY_{sensor_width_mm:g}x{h}.chan"


# The suffixes camera_files gives a camera's files (after the camera's name); the .chan's carries the filmback.
_EXPORT_SUFFIXES = ("_2d_3de.txt", "_2d.csv", "_2d.json", "_lens.json", "_plate.json", ".fbx", ".abc")
_CHAN_SUFFIX = re.compile(r"_ZXY_[0-9][0-9.e+-]*x(?:[0-9][0-9.e+-]*|\?)\.chan")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# Names Windows keeps for devices, whatever the extension (CON.fbx is the console there, not a file).
_WINDOWS_DEVICES = frozenset(("con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                              *(f"lpt{i}" for i in range(10))))
# Never an earlier run's export to remove, whatever a manifest lists: the manifest itself and the saved scene.
_NEVER_REMOVED = frozenset((SHOT_MANIFEST.casefold(), SHOT_BLEND.casefold()))


def export_name_ok(fname: str, camera: str) -> bool:
    """Whether ``fname`` is a name ``camera_files`` could give the camera ``camera``: plain on every file system
    (letters, digits, '_', '.', '-'; no trailing dot, no drive, no stream, no device name) and the camera's
    name plus one of the export's suffixes, spelled as the export spells it. Only such names of an earlier
    shot.json are ever removed: a manifest edited by hand or by someone else cannot aim the run elsewhere."""
    if not (_PLAIN_NAME.fullmatch(fname) and _PLAIN_NAME.fullmatch(camera)) or fname.endswith("."):
        return False
    if fname.split(".", 1)[0].casefold() in _WINDOWS_DEVICES or fname.casefold() in _NEVER_REMOVED:
        return False
    if not fname.startswith(camera) or camera != safe(camera):
        return False
    rest = fname[len(camera):]
    return rest in _EXPORT_SUFFIXES or _CHAN_SUFFIX.fullmatch(rest) is not None


def previous_exports(out: Path) -> list[str]:
    """The file names the shot.json in ``out`` lists, when we wrote it (its schema): what an earlier run exported
    there. Only names the export could have given that manifest's cameras count (``export_name_ok`` for a
    camera it names: never a path that leads elsewhere, a drive, a stream, a device, shot.json or shot.blend);
    [] without such a manifest."""
    try:
        manifest = json.loads((out / SHOT_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(manifest, dict) or manifest.get("schema") != SHOT_SCHEMA:
        return []
    cams = [c for c in manifest.get("cameras") or [] if isinstance(c, dict)]
    prefixes = sorted({c["name"] for c in cams if isinstance(c.get("name"), str)})  # the cameras it names
    names: list[str] = []
    for cam in cams:
        files = cam.get("files")
        for fname in (files.values() if isinstance(files, dict) else ()):
            if (isinstance(fname, str) and fname not in names
                    and any(export_name_ok(fname, p) for p in prefixes)):
                names.append(fname)
    return names


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def stale_exports(out: Path, previous: list[str], kept: set[str]) -> list[str]:
    """The names of ``previous`` (``previous_exports``) that the new run does not write (``kept``) and that are
    still files in ``out``: what the run removes, so shot.json and the folder agree. A name that is a kept one
    in another case (HERO_LENS.JSON on macOS or Windows is hero_lens.json), or the same file by another name,
    stays; shot.json and shot.blend always stay."""
    keep = {k.casefold() for k in kept} | _NEVER_REMOVED
    stale = []
    for n in previous:
        if n.casefold() in keep or not ((out / n).is_file() or (out / n).is_symlink()):
            continue
        if any(_same_file(out / n, out / k) for k in (*kept, SHOT_MANIFEST, SHOT_BLEND)):
            continue
        stale.append(n)
    return stale


def remove_stale_exports(out: Path, previous: list[str], kept: set[str]) -> list[str]:
    """Remove ``stale_exports``; returns the names removed (one that vanished meanwhile is skipped)."""
    removed = []
    for n in stale_exports(out, previous, kept):
        try:
            (out / n).unlink()
        except FileNotFoundError:
            continue
        removed.append(n)
    return removed


def camera_files(name: str, sensor_width_mm: float, sensor_height_mm: float | None,
                 formats: tuple[str, ...] = FORMATS) -> dict[str, str]:
    """kind -> file name of everything one camera's export writes (lens and plate always)."""
    files: dict[str, str] = {}
    if "chan" in formats:
        files["chan"] = chan_name(name, sensor_width_mm, sensor_height_mm)
    for kind, fname in (("3de", f"{name}_2d_3de.txt"), ("csv", f"{name}_2d.csv"), ("json", f"{name}_2d.json")):
        if kind in formats:
            files[kind] = fname
    files["lens"] = f"{name}_lens.json"
    files["plate"] = f"{name}_plate.json"
    for kind in ("fbx", "abc"):
        if kind in formats:
            files[kind] = f"{name}.{kind}"
    return files


REFINE_PARTS = ("FOCAL", "PRINCIPAL", "RADIAL")


def refine_error(refine: str) -> str | None:
    """Why ``refine`` is not FOCAL, FOCAL+PRINCIPAL, FOCAL+RADIAL, ... or NONE (a typo used to refine nothing)."""
    parts = [p for p in refine.upper().split("+") if p]
    if refine.upper() == "NONE" or (parts and all(p in REFINE_PARTS for p in parts)):
        return None
    return f"--refine {refine!r}: use NONE or {', '.join(REFINE_PARTS)} joined by '+' (e.g. FOCAL+RADIAL)"


def option_error(*, witnesses: int, offsets: int, fps: str | None = None, formats: str | None = None,
                 refine: str = "FOCAL", sensor_width: float | None = None,
                 focal_px: float | None = None, pixel_aspect: float | None = None,
                 witness_pixel_aspect: list[float] | None = None) -> str | None:
    """The first option of a track job that the job refuses, as its one-line message (None: all fine). The
    batch job and `mediaidx track` (real run and dry run) ask this one function, before anything starts."""
    from ..core.scene_setup import parse_rate

    if offsets > witnesses:
        return "more --offset values than --witness plates"
    if len(witness_pixel_aspect or []) > witnesses:
        return "more --witness-pixel-aspect values than --witness plates"
    if fps is not None and parse_rate(fps) is None:
        return f"--fps {fps!r} is not a frame rate (e.g. 25 or 24000/1001)"
    if formats is not None:
        unknown = [f for f in formats.split(",") if f not in FORMATS]
        if unknown:
            return f"--formats: unknown {', '.join(map(repr, unknown))} (known: {', '.join(FORMATS)})"
    if focal_px is not None and not focal_px > 0:
        return f"--focal-px {focal_px:g} is not a focal length in pixels (> 0)"
    for value in witness_pixel_aspect or []:
        problem = pixel_aspect_error(value, "--witness-pixel-aspect", zero_ok=True)
        if problem:
            return problem
    return refine_error(refine) or sensor_width_error(sensor_width) or pixel_aspect_error(pixel_aspect)
