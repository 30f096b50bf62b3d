"""Search and filters over a catalog built from generated media whose every property is known."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from bridge import MediaIndexer, synth
from bridge.errors import UsageError


@pytest.fixture(scope="module")
def ix(tmp_path_factory: pytest.TempPathFactory) -> MediaIndexer:
    base = tmp_path_factory.mktemp("search")
    root = base / "Library"
    shoot = root / "2024 Harbour shoot"
    (shoot / "A-cam").mkdir(parents=True)
    (shoot / "B-cam").mkdir()
    (root / "Stills").mkdir()
    (root / "Sound").mkdir()
    synth.make_video(shoot / "A-cam" / "A001_C001.mov", width=1920, height=1080, frames=2,
                     fps=Fraction(24000, 1001), audio=synth.tone(), timecode="10:00:00:00",
                     metadata={"creation_time": "2024-05-06T07:30:00.000000Z", "make": "Acme", "model": "Cine One"})
    synth.make_video(shoot / "A-cam" / "A001_C002.mov", width=3840, height=2160, frames=2, fps=25,
                     metadata={"creation_time": "2024-05-07T09:00:00.000000Z", "make": "Acme", "model": "Cine One"})
    synth.make_video(shoot / "B-cam" / "B001_C001.mp4", width=1280, height=720, frames=90, fps=30,
                     codec="mpeg4", audio=synth.silence(),
                     metadata={"creation_time": "2023-12-31T23:00:00.000000Z"})
    synth.make_image(root / "Stills" / "IMG_0001.jpg", width=640, height=480,
                     exif={0x010F: "Pentax", 0x0110: "K-1"}, exif_ifd={0x9003: "2024:05:06 08:12:00"})
    synth.make_audio(root / "Sound" / "ambience.wav", seconds=2.0)
    indexer = MediaIndexer(base / "cat.sqlite", cache_dir=base / "cache")
    summary = indexer.scan(root)
    assert summary.added == 5 and summary.failed == 0, summary.issues
    ids = {a.name: a.id for a in indexer.search(limit=100)}
    indexer.tag(ids["A001_C001.mov"], ["hero", "Selects"])
    indexer.tag(ids["B001_C001.mp4"], ["selects"])
    indexer.rate(ids["A001_C001.mov"], 5)
    indexer.rate(ids["B001_C001.mp4"], 2)
    indexer.note(ids["IMG_0001.jpg"], "lighthouse at dawn")
    yield indexer
    indexer.close()


def names(assets: list) -> list[str]:
    return sorted(a.name for a in assets)


def test_full_text_over_names_folders_metadata_tags_notes(ix: MediaIndexer) -> None:
    assert names(ix.search("A001")) == ["A001_C001.mov", "A001_C002.mov"]     # file name
    assert names(ix.search("harbour")) == ["A001_C001.mov", "A001_C002.mov", "B001_C001.mp4"]  # folder path
    assert names(ix.search("b-cam")) == ["B001_C001.mp4"]
    assert names(ix.search("mpeg4")) == ["B001_C001.mp4"]                     # probe metadata
    assert names(ix.search("Cine")) == ["A001_C001.mov", "A001_C002.mov"]     # camera
    assert names(ix.search("pentax")) == ["IMG_0001.jpg"]
    assert names(ix.search("4k")) == ["A001_C002.mov"]                        # resolution words
    assert names(ix.search("selects")) == ["A001_C001.mov", "B001_C001.mp4"]  # tags, case-insensitive
    assert names(ix.search("lighthouse")) == ["IMG_0001.jpg"]                 # notes
    assert names(ix.search("light")) == ["IMG_0001.jpg"]                      # prefixes
    assert names(ix.search("harbour -hero")) == ["A001_C002.mov", "B001_C001.mp4"]
    assert names(ix.search('"lighthouse at dawn"')) == ["IMG_0001.jpg"]
    assert ix.search("nothing-like-this") == []
    assert ix.search('AND OR NOT ( * "') == []                              # never an FTS syntax error
    with pytest.raises(UsageError):
        ix.search("-only -negatives")


def test_filters(ix: MediaIndexer) -> None:
    assert names(ix.search(kind="image")) == ["IMG_0001.jpg"]
    assert names(ix.search(kind="audio")) == ["ambience.wav"]
    assert names(ix.search(codec="mpeg4")) == ["B001_C001.mp4"]
    assert names(ix.search(codec="H264")) == ["A001_C001.mov", "A001_C002.mov"]
    assert names(ix.search(codec="pcm_s16le")) == ["ambience.wav"]
    assert names(ix.search(resolution="4k")) == ["A001_C002.mov"]
    assert names(ix.search(resolution="1080p", kind="video")) == ["A001_C001.mov", "A001_C002.mov"]
    assert names(ix.search(resolution="1280x720")) == ["A001_C001.mov", "A001_C002.mov", "B001_C001.mp4"]
    assert names(ix.search(resolution="sd")) == ["IMG_0001.jpg"]
    assert names(ix.search(min_duration=2.5)) == ["B001_C001.mp4"]
    assert names(ix.search(max_duration=0.2)) == ["A001_C001.mov", "A001_C002.mov"]
    assert names(ix.search(has_audio=True)) == ["A001_C001.mov", "B001_C001.mp4", "ambience.wav"]
    assert names(ix.search(has_audio=False, kind="video")) == ["A001_C002.mov"]
    assert names(ix.search(date_from="2024-05-06", date_to="2024-05-06")) == ["A001_C001.mov", "IMG_0001.jpg"]
    assert names(ix.search(date_from="2024-05")) == ["A001_C001.mov", "A001_C002.mov", "IMG_0001.jpg"]
    assert names(ix.search(date_to="2023")) == ["B001_C001.mp4"]
    assert names(ix.search(camera="acme")) == ["A001_C001.mov", "A001_C002.mov"]
    assert names(ix.search(camera="K-1")) == ["IMG_0001.jpg"]
    assert names(ix.search(tags=["selects"])) == ["A001_C001.mov", "B001_C001.mp4"]
    assert names(ix.search(tags=["selects", "hero"])) == ["A001_C001.mov"]
    assert names(ix.search(min_rating=3)) == ["A001_C001.mov"]
    assert names(ix.search("harbour", kind="video", has_audio=True, min_rating=1)) == [
        "A001_C001.mov", "B001_C001.mp4"]
    with pytest.raises(UsageError, match="resolution"):
        ix.search(resolution="huge")
    with pytest.raises(UsageError, match="date"):
        ix.search(date_from="May 2024")
    with pytest.raises(UsageError, match="unknown filter"):
        ix.search(colour="red")


def test_sorting_paging_counting_and_recent(ix: MediaIndexer) -> None:
    by_duration = ix.search(kind="video", sort="duration", descending=True)
    assert by_duration[0].name == "B001_C001.mp4"
    by_name = [a.name for a in ix.search(sort="name", descending=False)]
    assert by_name == sorted(by_name)
    page1 = ix.search(sort="name", descending=False, limit=2)
    page2 = ix.search(sort="name", descending=False, limit=2, offset=2)
    assert [a.name for a in page1 + page2] == by_name[:4]
    assert ix.count() == 5 and ix.count(kind="video") == 3 and ix.count("harbour") == 3
    captured = [a.name for a in ix.search(sort="captured", descending=False, kind="video")]
    assert captured == ["B001_C001.mp4", "A001_C001.mov", "A001_C002.mov"]
    newest = [a.id for a in ix.search(sort="added", limit=2)]
    assert [a.id for a in ix.get_recent(2)] == newest and newest[0] > newest[1]
    assert len(ix.get_recent(10)) == 5
    assert {a.kind for a in ix.get_recent(10, kind="image")} == {"image"}


def test_show_has_the_full_probe_and_user_data(ix: MediaIndexer) -> None:
    a = ix.search("A001_C001")[0]
    full = ix.get(a.id)
    assert full.fps == "24000/1001" and (full.width, full.height) == (1920, 1080)
    assert full.has_audio is True and full.audio_silent is False
    assert full.probe["timecode"] == "10:00:00:00"
    assert full.tags == ["hero", "Selects"] and full.rating == 5
    assert full.captured_at.startswith("2024-05-06T07:30:00")
    assert ix.get(full.path).id == a.id
    b = ix.get(ix.search("B001")[0].id)
    assert b.audio_silent is True


def test_stats(ix: MediaIndexer) -> None:
    s = ix.stats()
    assert s.present == 5 and s.by_kind == {"video": 3, "image": 1, "audio": 1}
    assert s.by_video_codec == {"h264": 2, "mpeg4": 1}
    assert s.by_resolution["4k"] == 1 and s.by_resolution["1080p"] == 1 and s.by_resolution["720p"] == 1
    assert s.by_camera == {"Acme Cine One": 2, "Pentax K-1": 1}  # make not repeated when the model has it
    assert s.by_month == {"2023-12": 1, "2024-05": 3}
    assert s.tags == {"Selects": 2, "hero": 1}  # tags match case-insensitively; the first spelling stays
    assert s.total_size == sum(p.stat().st_size for p in Path(s.roots[0]["url"]).rglob("*") if p.is_file())
    assert round(s.total_duration, 2) == round(sum(a.duration or 0 for a in ix.search(limit=10)), 2)


def test_tags_ignore_case_in_every_script(tmp_path: Path) -> None:
    """A French or German team types "Été" on one clip and "été" on the next: one tag, found by any spelling
    (SQLite's NOCASE folds only ASCII, so these were two tags and --tag été missed "Été")."""
    root = tmp_path / "lib"
    root.mkdir()
    for n in ("a", "b", "c"):
        synth.make_image(root / f"{n}.jpg", width=32, height=24)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        ix.scan(root, probe=False)
        ids = {a.name: a.id for a in ix.search(limit=10)}
        ix.tag(ids["a.jpg"], ["Été", "Straße"])
        ix.tag(ids["b.jpg"], ["été", "STRASSE"])
        ix.tag(ids["c.jpg"], ["Ete"])  # no accent: another word
        assert ix.stats().tags == {"Été": 2, "Straße": 2, "Ete": 1}
        assert ix.get(ids["b.jpg"]).tags == ["Straße", "Été"]  # the existing spelling wins
        assert names(ix.search(tags=["ÉTÉ"])) == ["a.jpg", "b.jpg"]
        assert names(ix.search(tags=["strasse"])) == ["a.jpg", "b.jpg"]
        assert ix.tag(ids["a.jpg"], ["ÉTÉ"]).plan == []  # already there: nothing to do
        ix.tag(ids["b.jpg"], ["ÉTÉ"], remove=True)
        assert names(ix.search(tags=["été"])) == ["a.jpg"]
        assert ix.tag(ids["b.jpg"], ["strasse"], dry_run=True).plan == []  # "Straße" folds to it
        with pytest.raises(UsageError, match="not valid UTF-8"):  # a lone surrogate, as JSON can carry
            ix.tag(ids["b.jpg"], ["x\ud800"])
