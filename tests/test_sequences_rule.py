"""Which numbered still images are one image sequence and which are separate photos (bpy-free core rule),
on real files: a phone photo beside the next one stays one photo on auto; VFX plates and renders stay
sequences; an explicit choice overrides the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from blender_mediaidx.core.sequences import (
    SEQUENCE_CHOICES,
    SequenceChoiceError,
    clip_frame_count,
    find_sequence,
    numbered_sequence,
)


def touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"\xff\xd8\xff\xe0 not decoded here")
    return folder


def test_a_phone_photo_beside_the_next_one_is_one_photo_on_auto(tmp_path: Path) -> None:
    d = touch(tmp_path, "IMG_0001.JPG", "IMG_0002.JPG")
    assert find_sequence(str(d / "IMG_0002.JPG")) is None
    assert find_sequence(str(d / "IMG_0001.JPG"), "auto") is None
    # The raw listing still sees them (Blender's movie clip reads them as frames), and "sequence" takes them.
    assert numbered_sequence(str(d / "IMG_0002.JPG")) is not None
    seq = find_sequence(str(d / "IMG_0002.JPG"), "sequence")
    assert seq is not None and (seq.first, seq.last, seq.frame_count) == (1, 2, 2)
    assert seq.files() == ["IMG_0001.JPG", "IMG_0002.JPG"]


@pytest.mark.parametrize("names", [
    ["DSC01234.JPG", "DSC01235.JPG"],             # no separator (Sony, Nikon)
    ["IMG_1001.jpeg", "IMG_1002.jpeg"],
    ["IMG_0001.HEIC", "IMG_0002.HEIC"],           # iPhone
    ["PXL_0001.heif", "PXL_0002.heif"],
    ["_MG_0001.CR2", "_MG_0002.CR2"],             # raw
    ["DSC_0001.NEF", "DSC_0002.NEF"],
    ["photo_0001.webp", "photo_0002.webp"],       # not a plate format: single unless name.NUMBER.ext
    ["IMG_0001.PNG", "IMG_0002.PNG"],             # iPhone screenshots: PNG, a plate format, but a phone's name
    ["DSC00001.TIF", "DSC00002.TIF"],
    ["Screenshot 2023-11-01 at 10.10.10.png", "Screenshot 2023-11-01 at 10.10.11.png"],   # macOS
    ["Screenshot_20231101-101010.png", "Screenshot_20231101-101011.png"],                 # Android
    ["shot.10.png", "shot.42.png"],               # numbers far apart: two pictures, not 31 missing frames
])
def test_camera_photo_names_stay_single_on_auto(tmp_path: Path, names: list[str]) -> None:
    d = touch(tmp_path, *names)
    assert find_sequence(str(d / names[0])) is None
    assert len(find_sequence(str(d / names[0]), "sequence").files()) == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(("names", "first", "last"), [
    ([f"plate.{f}.exr" for f in range(1001, 1004)], 1001, 1003),
    ([f"shot_010_v002.{f:04d}.dpx" for f in range(101, 104)], 101, 103),
    ([f"render_{f:04d}.png" for f in range(1, 4)], 1, 3),          # a plate format: '_' is fine
    ([f"bg{f:03d}.tif" for f in range(7, 9)], 7, 8),               # no separator, plate format
    ([f"comp_v01_{f:04d}.TIFF" for f in range(1, 3)], 1, 2),
    ([f"matte-{f}.tga" for f in range(1, 3)], 1, 2),
    ([f"sky_{f:04d}.hdr" for f in range(1, 3)], 1, 2),
    ([f"scan_{f:05d}.cin" for f in range(1, 3)], 1, 2),
    ([f"a_{f:03d}.jp2" for f in range(1, 3)], 1, 2),
    ([f"a_{f:03d}.sgi" for f in range(1, 3)], 1, 2),
    ([f"a_{f:03d}.rgb" for f in range(1, 3)], 1, 2),
    ([f"a_{f:03d}.bmp" for f in range(1, 3)], 1, 2),
    ([f"timelapse.{f:04d}.jpg" for f in range(1, 4)], 1, 3),       # a photo format named like a plate
    ([f"still.{f:04d}.HEIC" for f in range(1, 3)], 1, 2),
    ([f"sh.{f}.exr" for f in (1001, 1003)], 1001, 1003),               # a dropped frame: still the plate
])
def test_plates_and_renders_are_sequences_on_auto(tmp_path: Path, names: list[str], first: int, last: int) -> None:
    d = touch(tmp_path, *names)
    seq = find_sequence(str(d / names[-1]))
    assert seq is not None and (seq.first, seq.last) == (first, last)
    assert find_sequence(str(d / names[-1]), "single") is None


def test_a_lone_plate_frame_is_a_single_image_on_auto_and_single(tmp_path: Path) -> None:
    d = touch(tmp_path, "plate.1001.exr", "plate_other.0001.exr", "still.jpg")
    for name in ("plate.1001.exr", "plate_other.0001.exr", "still.jpg"):
        assert find_sequence(str(d / name)) is None
        assert find_sequence(str(d / name), "single") is None


@pytest.mark.parametrize("name", ["IMG_0001.JPG", "plate.1001.exr", "still.jpg"])
def test_sequence_on_a_lone_image_is_a_clear_error(tmp_path: Path, name: str) -> None:
    d = touch(tmp_path, name)
    with pytest.raises(SequenceChoiceError, match=rf"^{name}: not an image sequence .*import it as a single image$"):
        find_sequence(str(d / name), "sequence")


def test_an_unknown_choice_is_refused() -> None:
    assert SEQUENCE_CHOICES == ("auto", "single", "sequence")
    with pytest.raises(ValueError, match="unknown sequence choice 'movie'"):
        find_sequence("x.0001.exr", "movie")


def test_a_dslr_timelapse_is_one_photo_on_auto_and_480_frames_as_a_sequence(tmp_path: Path) -> None:
    d = touch(tmp_path, *(f"IMG_{f:04d}.JPG" for f in range(1, 481)))
    assert find_sequence(str(d / "IMG_0001.JPG")) is None
    seq = find_sequence(str(d / "IMG_0240.JPG"), "sequence")
    assert seq is not None and (seq.first, seq.last, seq.missing) == (1, 480, [])


def test_a_gap_is_kept_under_every_choice_that_takes_the_sequence(tmp_path: Path) -> None:
    d = touch(tmp_path, "IMG_0001.JPG", "IMG_0002.JPG", "IMG_0004.JPG", "sh.1001.exr", "sh.1003.exr")
    assert find_sequence(str(d / "IMG_0004.JPG"), "sequence").missing == [3]  # type: ignore[union-attr]
    assert find_sequence(str(d / "sh.1003.exr")).missing == [1002]  # type: ignore[union-attr]


def test_clip_frame_count_follows_blenders_movie_clip(tmp_path: Path) -> None:
    """Blender's clip reads the file's own number and the ones after it up to a gap, same padding."""
    d = touch(tmp_path, "IMG_0001.JPG", "IMG_0002.JPG", "IMG_0004.JPG", "x.png", "p.999.png", "p.1000.png")
    assert clip_frame_count(str(d / "IMG_0001.JPG")) == 2
    assert clip_frame_count(str(d / "IMG_0002.JPG")) == 1
    assert clip_frame_count(str(d / "x.png")) == 1
    assert clip_frame_count(str(d / "p.999.png")) == 2  # padding is a minimum width: 1000 follows 999


def test_mediaidx_blend_plans_the_choice_for_each_still(tmp_path: Path) -> None:
    """`mediaidx blend --dry-run --sequence ...`: the same rule, and a shot the workers would refuse fails."""
    from PIL import Image

    from bridge import MediaIndexer
    from bridge.blend import plan_blends
    from bridge.errors import MediaIdxError

    d = tmp_path / "DCIM"
    d.mkdir()
    for name in ("IMG_0001.JPG", "IMG_0002.JPG", "DSC_0100.JPG"):  # DSC_0100 has no neighbour
        Image.new("RGB", (32, 24), (len(name), 0, 0)).save(d / name)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(d)
        ids = {a.name: a.id for a in ix.search(None, limit=10)}
        ordered = [ids[n] for n in sorted(ids)]
        auto = {Path(p.source or p.path).name: p for p in plan_blends(ix, ordered, tmp_path / "out")}
        seq = {Path(p.source or p.path).name: p for p in plan_blends(ix, ordered, tmp_path / "out", sequence="sequence")}
        with pytest.raises(MediaIdxError, match="unknown sequence choice 'all'"):
            plan_blends(ix, list(ids.values()), tmp_path / "out", sequence="all")
    assert all(p.action == "write" and p.reason == "clip import; single image" for p in auto.values())
    assert seq["IMG_0001.JPG"].action == "write" and "image sequence 1-2 (2 frames)" in seq["IMG_0001.JPG"].reason
    assert seq["IMG_0002.JPG"].action == "skip"  # its frame is in the sequence IMG_0001's .blend holds
    assert seq["DSC_0100.JPG"].action == "fail" and "not an image sequence" in seq["DSC_0100.JPG"].reason
    assert not (tmp_path / "out").exists()


def test_mediaidx_blend_builds_an_image_sequence_once(tmp_path: Path) -> None:
    """Each frame of a sequence is an asset: a search for it returned every frame, and blend planned one .blend
    per frame, each holding the whole sequence. One .blend, from the first frame asked for; the rest skipped."""
    from PIL import Image

    from bridge import MediaIndexer
    from bridge.blend import plan_blends

    d = tmp_path / "plates"
    d.mkdir()
    for f in (1001, 1002, 1003):
        Image.new("RGB", (32, 24), (f % 256, 0, 0)).save(d / f"plate.{f}.png")
    Image.new("RGB", (32, 24)).save(d / "still.png")
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(d)
        ids = {a.name: a.id for a in ix.search(None, limit=10)}
        order = [ids["plate.1002.png"], ids["plate.1001.png"], ids["still.png"], ids["plate.1003.png"]]
        plan = plan_blends(ix, order, tmp_path / "out")
    writes = [p for p in plan if p.action == "write"]
    skips = {p.id: p.reason for p in plan if p.action == "skip"}
    assert [p.id for p in writes] == [ids["plate.1002.png"], ids["still.png"]]
    assert "image sequence 1001-1003" in writes[0].reason
    assert skips == {ids["plate.1001.png"]: f"a frame of the image sequence built from asset {ids['plate.1002.png']}",
                     ids["plate.1003.png"]: f"a frame of the image sequence built from asset {ids['plate.1002.png']}"}
