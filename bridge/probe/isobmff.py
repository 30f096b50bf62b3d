"""A small ISO BMFF / QuickTime box walker for what PyAV 18 does not expose.

PyAV has no reader for stream side data, so the display matrix (phone rotation) is read here from
each track's ``tkhd`` (times the movie ``mvhd`` matrix, as libavformat does). The same walk finds a
cut-short file (a box running past the end) and a Samsung motion photo's embedded video (``mpvd``).
Only box headers and a few small boxes are read, never the sample tables.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

ReadAt = Callable[[int, int], bytes]

MAX_TOP_BOXES = 4096  # fragmented files have thousands of moof/mdat pairs; stop walking after this
MAX_TOP_BOXES_REMOTE = 64  # through a caller's file object every box header may be a network round trip
MAX_CHILDREN = 512
MOOV_IN_MEMORY = 1 << 20  # a moov up to this size is read in one go (long clips have bigger ones)
IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


@dataclass
class Box:
    type: bytes
    offset: int
    header: int
    size: int  # whole box, header included

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def body(self) -> int:
        return self.offset + self.header


@dataclass
class Track:
    track_id: int
    handler: str | None = None  # 'vide', 'soun', 'tmcd', 'meta'...
    sample_entry: str | None = None  # codec fourcc of the first sample description ('avc1', 'tmcd', 'gpmd')
    matrix: tuple[int, ...] | None = None  # tkhd x mvhd, only when not identity (as libavformat keeps it)


@dataclass
class Layout:
    boxes: list[Box] = field(default_factory=list)  # top level
    complete: bool = True  # False when the walk stopped early (MAX_TOP_BOXES)
    overrun: Box | None = None  # a top-level box claiming to end after the end of the file
    tracks: list[Track] = field(default_factory=list)

    def find(self, kind: bytes) -> Box | None:
        return next((b for b in self.boxes if b.type == kind), None)


def box_limit(remote: bool) -> int:
    """How many top-level boxes to walk: few through a caller's (possibly remote) file object."""
    return MAX_TOP_BOXES_REMOTE if remote else MAX_TOP_BOXES


def iter_boxes(read_at: ReadAt, start: int, end: int, limit: int) -> Iterator[Box]:
    """Boxes between ``start`` and ``end``; a box running past ``end`` is yielded and ends the walk."""
    pos, count = start, 0
    while pos + 8 <= end and count < limit:
        hdr = read_at(pos, 16)
        if len(hdr) < 8:
            return
        size, kind = struct.unpack(">I4s", hdr[:8])
        header = 8
        if size == 1:
            if len(hdr) < 16:
                return
            size = struct.unpack(">Q", hdr[8:16])[0]
            header = 16
        elif size == 0:
            size = end - pos  # runs to the end of the enclosing box / file
        if size < header:
            return  # garbage: stop rather than loop
        yield Box(kind, pos, header, size)
        pos += size
        count += 1


def walk(read_at: ReadAt, file_size: int, *, tracks: bool = True, max_boxes: int = MAX_TOP_BOXES) -> Layout:
    """Top-level boxes of the file, plus per-track handler, codec fourcc and display matrix."""
    layout = Layout()
    for box in iter_boxes(read_at, 0, file_size, max_boxes):
        layout.boxes.append(box)
        if box.end > file_size:
            layout.overrun = box
            break
    else:
        if len(layout.boxes) >= max_boxes:
            layout.complete = False
    moov = layout.find(b"moov")
    if tracks and moov is not None and layout.overrun is not moov:
        if moov.size <= MOOV_IN_MEMORY:
            data, base = read_at(moov.offset, moov.size), moov.offset  # one read instead of dozens

            def read_mem(offset: int, n: int) -> bytes:
                return data[offset - base: offset - base + n]

            layout.tracks = _tracks(read_mem, moov)
        else:
            layout.tracks = _tracks(read_at, moov)
    return layout


def _children(read_at: ReadAt, box: Box) -> Iterator[Box]:
    return iter_boxes(read_at, box.body, box.end, MAX_CHILDREN)


def _child(read_at: ReadAt, box: Box, kind: bytes) -> Box | None:
    return next((c for c in _children(read_at, box) if c.type == kind), None)


def _matrix(data: bytes) -> tuple[int, ...]:
    return struct.unpack(">9i", data[:36])


def _tracks(read_at: ReadAt, moov: Box) -> list[Track]:
    movie = IDENTITY
    out: list[Track] = []
    for child in _children(read_at, moov):
        if child.type == b"mvhd":
            data = read_at(child.body, 120)
            # version 0: 4 flags + 4*4 times + 4 rate + 2 volume + 10 reserved; version 1 has 64-bit times
            off = 36 if data[:1] == b"\x00" else 48
            if len(data) >= off + 36:
                movie = _matrix(data[off:])
        elif child.type == b"trak":
            track = _track(read_at, child, movie)
            if track is not None:
                out.append(track)
    return out


def _track(read_at: ReadAt, trak: Box, movie: tuple[int, ...]) -> Track | None:
    tkhd = _child(read_at, trak, b"tkhd")
    if tkhd is None:
        return None
    data = read_at(tkhd.body, 96)
    v1 = data[:1] == b"\x01"
    id_off, m_off = (20, 52) if v1 else (12, 40)
    if len(data) < m_off + 36:
        return None
    track = Track(track_id=struct.unpack(">I", data[id_off: id_off + 4])[0])
    matrix = _multiply(_matrix(data[m_off:]), movie)
    if matrix != IDENTITY:
        track.matrix = matrix
    mdia = _child(read_at, trak, b"mdia")
    if mdia is not None:
        for c in _children(read_at, mdia):
            if c.type == b"hdlr":
                h = read_at(c.body, 12)
                if len(h) == 12:
                    track.handler = h[8:12].decode("latin-1")
            elif c.type == b"minf":
                stbl = _child(read_at, c, b"stbl")
                stsd = _child(read_at, stbl, b"stsd") if stbl else None
                if stsd is not None:
                    d = read_at(stsd.body, 16)
                    if len(d) == 16 and struct.unpack(">I", d[4:8])[0] > 0:
                        track.sample_entry = d[12:16].decode("latin-1")
    return track


def _multiply(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """libavformat's tkhd x mvhd product in fixed point (16.16 for a-d, 2.30 for u,v,w)."""
    shift = (16, 16, 30)
    res = []
    for i in range(3):
        for j in range(3):
            res.append(sum((a[i * 3 + e] * b[e * 3 + j]) >> shift[e] for e in range(3)))
    return tuple(_int32(v) for v in res)


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def rotation(matrix: tuple[int, ...]) -> tuple[int, bool] | None:
    """(degrees, mirrored) like av_display_rotation_get(): counter-clockwise, in (-180, 180]."""
    a, b, c, d = (v / 65536.0 for v in (matrix[0], matrix[1], matrix[3], matrix[4]))
    s0, s1 = math.hypot(a, c), math.hypot(b, d)
    if s0 == 0 or s1 == 0:
        return None
    deg = -math.degrees(math.atan2(b / s1, a / s0))
    deg_i = round(deg)
    if deg_i == -180:
        deg_i = 180
    mirrored = (a * d - b * c) < 0
    return (deg_i or 0), mirrored
