"""bridge.probe: real corpus files checked against ffprobe and MANIFEST.tsv, synthetic media with known
truth, and bad input that must fail with a readable ProbeError (or probe with a warning).

Frame rates, compared with ffprobe. ffprobe prints two rates per video stream: r_frame_rate (the
lowest rate that represents every timestamp; for interlaced video the field rate, for phone VFR clips
often the timebase) and avg_frame_rate (frames / duration). Our ``avg_frame_rate`` and ``r_frame_rate``
must equal ffprobe's strings exactly. Our nominal ``frame_rate`` is libavformat's av_guess_frame_rate:
where ffprobe's r and avg agree (CFR) it must equal that exact string; where they differ it must be
within 0.5 % of avg_frame_rate, which is what an editor would conform to (iPhone MOV: r=30000/1001,
avg=72000/2401, nominal 30000/1001; Sony 50i MTS: r=50/1, avg=25/1, nominal 25/1; FLIR VFR: r=600/1,
avg=12600/1703, nominal 12600/1703).

Durations. The stored answers come from Debian's ffprobe 5.1, PyAV bundles FFmpeg 8. Stream durations
agree between them; the container duration does not for two files, because newer libavformat takes the
longest stream rather than the movie header (GoPro: its SOS data track, 13.013 s; Android: its audio
track, 1.3227 s). For those two the container duration is checked against MANIFEST.tsv (made with
PyAV) instead. Video stream durations are compared everywhere, to one frame.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest

from bridge import synth
from bridge.errors import ProbeError
from bridge.probe import SUMMARY_KEYS, avprobe, probe_file, summarize

DATA = Path(__file__).parent / "data" / "ffprobe_corpus.json"
EXPECT = json.loads(DATA.read_text(encoding="utf-8"))["files"]
VIDEOS = sorted(k for k in EXPECT if k.startswith("video/"))
AUDIOS = sorted(k for k in EXPECT if k.startswith("audio/"))

# container durations where ffprobe 5.1 and libavformat 8 disagree (see the module docstring)
FFMPEG8_CONTAINER_DURATION = {"video/camera/gopro_karma.mp4", "video/phone/android_3gp5.mp4"}


@cache
def _probe(path: str) -> dict:
    return probe_file(path)


def probe_corpus(corpus: Path, rel: str) -> dict:
    """Probe a corpus file once per session (probes are pure functions of the file)."""
    return _probe(str(corpus / rel))


def primary_video(probe: dict) -> dict:
    return next(s for s in probe["streams"] if s["type"] == "video" and "width" in s)


def check_json(probe: dict) -> None:
    json.dumps(probe, allow_nan=False)
    s = summarize(probe)
    assert tuple(s) == SUMMARY_KEYS
    json.dumps(s, allow_nan=False)


# -- corpus against ffprobe -----------------------------------------------------------------------------

def compare_with_ffprobe(rel: str, ours: dict, ff: dict, manifest: dict | None = None) -> None:
    """Codec names, sizes, frame rates, durations (one frame), stream count and has_audio."""
    ff_streams = ff["streams"]
    assert len(ours["streams"]) == len(ff_streams) == int(ff["format"]["nb_streams"]), rel
    assert ours["format"]["name"] == ff["format"]["format_name"], rel
    for mine, theirs in zip(ours["streams"], ff_streams, strict=True):
        assert mine["index"] == theirs["index"]
        assert mine["type"] == theirs["codec_type"], (rel, mine["index"])
        # data streams ffprobe cannot name ('unknown': tmcd, mebx) have no codec in ours
        named = theirs["codec_type"] in ("video", "audio", "subtitle") or theirs.get("codec_name", "unknown") != "unknown"
        if named:
            assert mine.get("codec") == theirs["codec_name"], (rel, mine["index"])
        if theirs["codec_type"] == "audio":
            assert mine["sample_rate"] == int(theirs["sample_rate"]), rel
            assert mine["channels"] == theirs["channels"], rel
    v_ff = next(s for s in ff_streams if s["codec_type"] == "video")
    v = primary_video(ours)
    assert (v["width"], v["height"]) == (v_ff["width"], v_ff["height"]), rel
    assert v["avg_frame_rate"] == v_ff["avg_frame_rate"], rel
    assert v["r_frame_rate"] == v_ff["r_frame_rate"], rel
    nominal, avg = Fraction(v["frame_rate"]), Fraction(v_ff["avg_frame_rate"])
    if v_ff["r_frame_rate"] == v_ff["avg_frame_rate"]:
        assert v["frame_rate"] == v_ff["avg_frame_rate"], rel  # CFR: the exact rational
    else:
        assert abs(float(nominal / avg) - 1) < 0.005, rel
    frame = 1 / float(avg)
    if "duration" in v_ff:
        assert v["duration"] == pytest.approx(float(v_ff["duration"]), abs=frame), rel
    ff_dur = float(ff["format"]["duration"])
    if rel in FFMPEG8_CONTAINER_DURATION and manifest is not None:
        assert ours["format"]["duration"] == pytest.approx(float(manifest[rel]["duration_s"]), abs=0.001), rel
    elif rel not in FFMPEG8_CONTAINER_DURATION:
        assert ours["format"]["duration"] == pytest.approx(ff_dur, abs=frame), rel
        assert summarize(ours)["duration"] == pytest.approx(ff_dur, abs=frame), rel
    assert ours["has_audio"] is any(s["codec_type"] == "audio" for s in ff_streams), rel
    s = summarize(ours)
    assert s["kind"] == "video"
    assert s["video_codec"] == v_ff["codec_name"]
    assert (s["width"], s["height"]) == (v_ff["width"], v_ff["height"])
    assert Fraction(s["fps_num"], s["fps_den"]) == nominal


@pytest.mark.corpus
@pytest.mark.parametrize("rel", VIDEOS)
def test_corpus_video_matches_stored_ffprobe(corpus, corpus_manifest, rel):
    ours = probe_corpus(corpus, rel)
    compare_with_ffprobe(rel, ours, EXPECT[rel], corpus_manifest)
    assert ours["warnings"] == [], ours["warnings"]
    check_json(ours)


@pytest.mark.corpus
@pytest.mark.parametrize("rel", AUDIOS)
def test_corpus_audio_matches_stored_ffprobe(corpus, corpus_manifest, rel):
    ours = probe_corpus(corpus, rel)
    ff = EXPECT[rel]
    a, a_ff = ours["streams"][0], ff["streams"][0]
    assert ours["kind"] == "audio" and ours["has_audio"] is True
    assert a["codec"] == a_ff["codec_name"]  # 'mp3', not the 'mp3float' decoder
    assert a["sample_rate"] == int(a_ff["sample_rate"]) and a["channels"] == a_ff["channels"]
    m = re.search(r"(\d+)Hz (\d+)ch", corpus_manifest[rel]["probe_summary"])
    assert (a["sample_rate"], a["channels"]) == (int(m.group(1)), int(m.group(2)))
    assert summarize(ours)["duration"] == pytest.approx(float(corpus_manifest[rel]["duration_s"]), abs=0.01)
    assert ours["audio"]["silent"] is False  # speech
    assert summarize(ours)["audio_silent"] is False
    check_json(ours)


@pytest.mark.corpus
@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not on PATH")
def test_corpus_videos_match_live_ffprobe(corpus, corpus_manifest):
    ffprobe = shutil.which("ffprobe")
    for rel in VIDEOS:
        out = subprocess.run([ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json",
                              str(corpus / rel)], capture_output=True, text=True, check=True).stdout
        compare_with_ffprobe(rel, probe_corpus(corpus, rel), json.loads(out), corpus_manifest)


@pytest.mark.corpus
@pytest.mark.parametrize("rel", [r for r in VIDEOS if r.endswith((".mp4", ".mov"))])
def test_bmff_open_options_lose_nothing(corpus, monkeypatch, rel):
    """The tuned libavformat options for ISO BMFF give the same probe as FFmpeg's defaults."""
    tuned = probe_file(corpus / rel)
    monkeypatch.setattr(avprobe, "BMFF_OPTIONS", {})
    assert probe_file(corpus / rel) == tuned


@pytest.mark.corpus
def test_corpus_file_objects_probe_like_paths(corpus):
    for rel in [*VIDEOS, *AUDIOS, "images/exif/apple_iphone_6.jpg", "images/heic/iphone8_IMG_1034.heic"]:
        with open(corpus / rel, "rb") as fh:
            assert probe_file(fh, name=Path(rel).name) == probe_corpus(corpus, rel), rel


# -- corpus metadata --------------------------------------------------------------------------------------

@pytest.mark.corpus
def test_iphone_mov_date_zone_camera_gps_rotation(corpus):
    p = probe_corpus(corpus, "video/phone/iphone6_with-gps.mov")
    assert p["created"]["value"] == "2019-07-24T11:25:40+03:00"
    assert p["created"]["source"] == "com.apple.quicktime.creationdate"
    assert p["camera"] == {"make": "Apple", "model": "iPhone 6", "software": "12.3"}
    assert p["gps"]["lat"] == pytest.approx(32.0929) and p["gps"]["lon"] == pytest.approx(34.8620)
    assert p["gps"]["alt"] == pytest.approx(28.516)
    v = primary_video(p)
    assert v["rotation"] == -90  # as ffprobe: displayed turned 90 degrees clockwise
    assert (v["display_width"], v["display_height"]) == (320, 568)
    assert v["vfr"] is False
    assert v["color_primaries"] == v["color_transfer"] == v["color_space"] == "bt709"
    s = summarize(p)
    assert s["captured_at"] == "2019-07-24T11:25:40+03:00"
    assert s["captured_utc"] == pytest.approx(1563956740.0)  # 08:25:40Z
    assert (s["camera_make"], s["camera_model"]) == ("Apple", "iPhone 6")
    assert (s["container"], s["audio_silent"]) == ("mov", False)
    assert (s["width"], s["height"]) == (568, 320)  # as stored


@pytest.mark.corpus
def test_android_silent_audio_and_null_island(corpus):
    p = probe_corpus(corpus, "video/phone/android_3gp5.mp4")
    assert p["has_audio"] is True
    assert p["audio"]["silent"] is True
    assert p["audio"]["peak_dbfs"] is None and p["audio"]["rms_dbfs"] is None  # digital zeros
    assert p["audio"]["analysed_seconds"] > 1.0
    assert "gps" not in p  # '+00.0000+000.0000/' is a placeholder
    assert summarize(p)["audio_silent"] is True
    assert p["created"]["value"] == "2020-10-23T20:27:29+00:00"


@pytest.mark.corpus
def test_bigbuckbunny_surround_audio_and_placeholder_date(corpus):
    p = probe_corpus(corpus, "video/other/bigbuckbunny_5s.mp4")
    a = next(s for s in p["streams"] if s["type"] == "audio")
    assert a["channels"] == 6 and a["channel_layout"] == "5.1"
    assert p["audio"]["silent"] is False
    assert "created" not in p  # creation_time 1970-01-01T00:00:00 is a placeholder
    s = summarize(p)
    assert s["captured_at"] is None and s["captured_utc"] is None
    assert (s["fps_num"], s["fps_den"]) == (25, 1)


@pytest.mark.corpus
def test_gopro_timecode_and_camera(corpus):
    p = probe_corpus(corpus, "video/camera/gopro_karma.mp4")
    assert p["timecode"] == "19:26:48:04"
    assert "tmcd" in p["timecode_source"]
    assert p["camera"]["make"] == "GoPro"
    assert p["camera"]["software"] == "HD5.02.02.00.00"
    assert [s.get("codec_tag") for s in p["streams"]][2:] == ["tmcd", "gpmd", "fdsc"]


@pytest.mark.corpus
def test_flir_gps_and_vfr(corpus):
    p = probe_corpus(corpus, "video/phone/flir_thermal.mp4")
    assert p["gps"]["lat"] == pytest.approx(34.0754) and p["gps"]["lon"] == pytest.approx(-118.2543)
    assert "alt" not in p["gps"]
    v = primary_video(p)
    assert v["vfr"] is True and v["frame_rate"] == "12600/1703"
    assert summarize(p)["captured_at"] == "2021-05-16T19:27:55+00:00"


@pytest.mark.corpus
def test_sony_interlaced_mts_is_not_vfr(corpus):
    v = primary_video(probe_corpus(corpus, "video/camera/sony_a7m3.mts"))
    assert (v["frame_rate"], v["r_frame_rate"], v["field_order"], v["vfr"]) == ("25/1", "50/1", "tt", False)


@pytest.mark.corpus
def test_canon_avi_naive_date_and_software(corpus):
    p = probe_corpus(corpus, "video/camera/canon_MVI_4823.avi")
    assert p["created"]["value"] == "2012-09-10T20:52:00"  # the file gives no zone
    assert p["camera"]["software"] == "CanonMVI06"
    s = summarize(p)
    assert s["container"] == "avi" and s["video_codec"] == "mjpeg" and s["audio_codec"] == "pcm_s16le"


@pytest.mark.corpus
def test_matroska_without_audio(corpus):
    p = probe_corpus(corpus, "video/shots/popeye_T00-1_pgs.mkv")
    assert p["has_audio"] is False and "audio" not in p
    assert [s["type"] for s in p["streams"]] == ["video", "subtitle"]
    s = summarize(p)
    assert (s["container"], s["video_codec"], s["has_audio"], s["audio_silent"]) == ("matroska", "hevc", False, None)


_EXIF_SUMMARY = re.compile(r"EXIF Make=(?P<make>.*?) Model=(?P<model>.*?); DateTimeOriginal=(?P<dto>[^;]*); "
                           r"GPS=(?P<gps>yes|no)(?:; Orientation=(?P<ori>\d))?")


def _manifest_stills(corpus_manifest, folder):
    return [(rel, row) for rel, row in corpus_manifest.items() if rel.startswith(folder)]


def _check_still(rel: str, row: dict, p: dict) -> None:
    m = _EXIF_SUMMARY.search(row["probe_summary"])
    assert m, row["probe_summary"]
    exif = p["image"].get("exif", {})
    s = summarize(p)
    assert s["kind"] == "image" and s["has_audio"] is None
    assert f"{s['width']}x{s['height']}" == row["resolution"], rel
    if m["make"] == "-":
        assert "make" not in exif and "model" not in exif, rel
        assert "make" not in p.get("camera", {}) and "model" not in p.get("camera", {}), rel
        assert s["camera_make"] is None and s["camera_model"] is None
    else:
        assert (exif["make"], exif["model"]) == (m["make"], m["model"]), rel
        assert (s["camera_make"], s["camera_model"]) == (m["make"], m["model"]), rel
    date = m["dto"].replace(":", "-", 2).replace(" ", "T")
    assert p["created"]["value"].startswith(date), rel
    assert s["captured_at"] == p["created"]["value"]
    assert ("gps" in exif) is (m["gps"] == "yes"), rel
    assert p["image"].get("orientation") == (int(m["ori"]) if m["ori"] else None), rel
    check_json(p)


@pytest.mark.corpus
def test_corpus_jpeg_exif_matches_manifest(corpus, corpus_manifest):
    rows = _manifest_stills(corpus_manifest, "images/exif/")
    assert len(rows) >= 15
    for rel, row in rows:
        p = probe_corpus(corpus, rel)
        _check_still(rel, row, p)
        assert p["format"]["container"] == "jpeg"
        assert p["created"]["source"] == "exif:DateTimeOriginal"
        assert p["warnings"] == [], rel


@pytest.mark.corpus
def test_corpus_jpeg_exif_values(corpus):
    p = probe_corpus(corpus, "images/exif/apple_iphone_6.jpg")
    ex = p["image"]["exif"]
    assert p["gps"]["lat"] == pytest.approx(51.7624083, abs=1e-6)
    assert p["gps"]["lon"] == pytest.approx(-0.3178917, abs=1e-6)
    assert p["gps"]["alt"] == pytest.approx(111.261, abs=1e-3)
    assert ex["f_number"] == 2.2 and ex["iso"] > 0 and "/" in ex["exposure_time"]
    assert ex["lens_model"].startswith("iPhone 6 back camera")
    assert p["created"]["value"] == "2014-09-16T14:05:12.133000"  # SubSecTimeOriginal kept
    # a GPS IFD with 0,0 coordinates is a placeholder: the IFD is reported, the position is not
    p = probe_corpus(corpus, "images/exif/samsung_gt-i9000_galaxy_s.jpg")
    assert "gps" in p["image"]["exif"] and "gps" not in p
    assert p["image"]["orientation"] == 6


@pytest.mark.corpus
def test_corpus_heic_matches_manifest(corpus, corpus_manifest):
    rows = _manifest_stills(corpus_manifest, "images/heic/")
    assert len(rows) >= 5
    for rel, row in rows:
        p = probe_corpus(corpus, rel)
        _check_still(rel, row, p)
        assert p["format"]["container"] == "heif"
        assert p.get("motion_photo", False) is ("motionphoto" in row["kind"]), rel
    nokia = probe_corpus(corpus, "images/heic/nokia_8.3_5g.heif")
    assert "make" not in nokia.get("camera", {}) and "model" not in nokia.get("camera", {})
    assert nokia["created"]["source"] == "exif:DateTime"  # no DateTimeOriginal in that file
    assert nokia["gps"]["lat"] == pytest.approx(40.78868522, abs=1e-6)
    iphone = probe_corpus(corpus, "images/heic/iphone13promax.heic")
    assert iphone["created"]["value"] == "2022-02-16T12:55:41.762000+01:00"  # OffsetTimeOriginal
    assert iphone["image"]["exif"]["orientation"] == 6 and iphone["image"]["orientation_applied"] is True
    mp = probe_corpus(corpus, "images/heic/samsung_motionphoto_one-ui-6.heic")
    video = mp["image"]["motion_video"]
    with open(corpus / "images/heic/samsung_motionphoto_one-ui-6.heic", "rb") as fh:
        fh.seek(video["offset"])
        assert fh.read(12)[4:8] == b"ftyp"  # the embedded MP4 starts there


# -- synthetic media with known truth -------------------------------------------------------------------

@pytest.mark.parametrize("ext", ["mp4", "mov", "mkv"])
@pytest.mark.parametrize("fps", ["24000/1001", "25/1", "30000/1001"])
def test_synthetic_frame_rates_and_counts(tmp_path, ext, fps):
    frames = 48
    path = synth.make_video(tmp_path / f"clip.{ext}", fps=Fraction(fps), frames=frames, width=160, height=120)
    p = probe_file(path)
    v = primary_video(p)
    assert v["frame_rate"] == fps and v["avg_frame_rate"] == fps and v["vfr"] is False
    rate = Fraction(fps)
    if ext in ("mp4", "mov"):
        assert v["frame_count"] == frames  # from the header, not by decoding
        assert v["duration"] == pytest.approx(float(frames / rate), abs=1e-3)
    else:
        assert "frame_count" not in v  # Matroska headers do not say; never guessed
    s = summarize(p)
    assert Fraction(s["fps_num"], s["fps_den"]) == rate
    assert (s["width"], s["height"], s["kind"], s["video_codec"]) == (160, 120, "video", "h264")
    assert s["duration"] == pytest.approx(float(frames / rate), abs=float(1 / rate))
    assert s["container"] == {"mp4": "mp4", "mov": "mov", "mkv": "matroska"}[ext]
    assert s["has_audio"] is False and s["audio_silent"] is None and "audio" not in p
    assert p["warnings"] == []
    check_json(p)


@pytest.mark.parametrize(("ext", "tc"), [("mov", "01:02:03:04"), ("mp4", "10:00:00:00"), ("mkv", "01:02:03;04")])
def test_synthetic_timecode(tmp_path, ext, tc):
    p = probe_file(synth.make_video(tmp_path / f"tc.{ext}", fps=Fraction(30000, 1001), frames=10, timecode=tc))
    assert p["timecode"] == tc
    assert p["timecode_source"]


def test_synthetic_creation_time_and_udta_camera_gps(tmp_path):
    meta = {"creation_time": "2023-05-06T07:08:09.000000Z", "make": "Acme", "model": "Cam 1",
            "location": "+48.8577+002.2950+035.000/"}
    p = probe_file(synth.make_video(tmp_path / "meta.mov", frames=5, metadata=meta))
    assert p["created"] == {"value": "2023-05-06T07:08:09+00:00", "source": "format:creation_time",
                            "utc": 1683356889.0}
    assert (p["camera"]["make"], p["camera"]["model"]) == ("Acme", "Cam 1")
    assert (p["gps"]["lat"], p["gps"]["lon"], p["gps"]["alt"]) == (48.8577, 2.295, 35.0)
    s = summarize(p)
    assert s["captured_at"] == "2023-05-06T07:08:09+00:00" and s["captured_utc"] == 1683356889.0
    assert (s["camera_make"], s["camera_model"]) == ("Acme", "Cam 1")


def test_synthetic_quicktime_mdta_keys_keep_zone(tmp_path):
    path = tmp_path / "mdta.mov"
    with av.open(str(path), "w", options={"movflags": "use_metadata_tags"}) as out:
        out.metadata.update({"com.apple.quicktime.creationdate": "2021-03-04T05:06:07-0800",
                             "com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 15",
                             "com.apple.quicktime.location.ISO6709": "-33.8568+151.2153+005.000/",
                             "creation_time": "2021-03-04T13:06:07Z"})
        vs = out.add_stream("libx264", rate=30)
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        vs.set_display_rotation(90)
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
    p = probe_file(path)
    assert p["created"]["value"] == "2021-03-04T05:06:07-08:00"  # mdta date wins and keeps its zone
    assert p["camera"] == {"make": "Apple", "model": "iPhone 15"}
    assert (p["gps"]["lat"], p["gps"]["lon"]) == (-33.8568, 151.2153)
    v = primary_video(p)
    assert v["rotation"] == 90 and (v["display_width"], v["display_height"]) == (64, 64)
    assert summarize(p)["captured_utc"] == 1614863167.0


def test_synthetic_hdr_colour_names(tmp_path):
    path = tmp_path / "hdr.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        cc = vs.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = 9, 16, 9, 1  # BT.2020 PQ, limited
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
    v = primary_video(probe_file(path))
    assert (v["color_primaries"], v["color_transfer"], v["color_space"], v["color_range"], v["hdr"]) == (
        "bt2020", "smpte2084", "bt2020nc", "tv", "pq")
    assert v["bit_depth"] == 8 and v["pix_fmt"] == "yuv420p"


def test_bwf_bext_tags(tmp_path):
    path = tmp_path / "take.wav"
    with av.open(str(path), "w", options={"write_bext": "1"}) as out:
        out.metadata.update({"description": "Scene 12 take 3", "originator": "Recorder X",
                             "origination_date": "2024-02-03", "origination_time": "14:15:16",
                             "time_reference": str(48000 * 3600 * 10)})
        stream = out.add_stream("pcm_s16le", rate=48000, layout="mono")
        samples = (np.sin(np.arange(48000) / 10) * 10000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    p = probe_file(path)
    assert p["format"]["tags"]["time_reference"] == str(48000 * 3600 * 10)  # kept as libavformat gives it
    assert p["bwf"]["time_reference"] == 48000 * 3600 * 10 and p["bwf"]["start_clock"] == "10:00:00.000"
    assert p["bwf"]["description"] == "Scene 12 take 3" and p["bwf"]["originator"] == "Recorder X"
    assert p["created"] == {"value": "2024-02-03T14:15:16", "source": "bext:origination", "utc": 1706969716.0}
    assert p["audio"]["silent"] is False


def test_tag_parsers():
    from bridge.probe.tags import parse_date, parse_iso6709
    from bridge.probe.timecode import normalise

    assert parse_iso6709("+32.0929+034.8620+028.516/") == {"lat": 32.0929, "lon": 34.862, "alt": 28.516}
    assert parse_iso6709("-3351.41+15112.92/") == {"lat": pytest.approx(-33.856833), "lon": pytest.approx(151.2153)}
    assert parse_iso6709("+40.7886-004.0051CRSWGS_84/") == {"lat": 40.7886, "lon": -4.0051}
    assert parse_iso6709("+00.0000+000.0000/") is None  # placeholder
    assert parse_iso6709("+95.0000+000.0000/") is None and parse_iso6709("garbage") is None
    assert parse_date("2019-07-24T11:25:40+0300").isoformat() == "2019-07-24T11:25:40+03:00"
    assert parse_date("2019:07:24 11:25:40", zone="-08:00", subsec="5").isoformat() == "2019-07-24T11:25:40.500000-08:00"
    assert parse_date("2012-09-10 20:52:00").tzinfo is None
    for placeholder in ("1970-01-01T00:00:00.000000Z", "1904-01-01 00:00:00", "0000:00:00 00:00:00",
                        "    :  :     :  :  ", ""):
        assert parse_date(placeholder) is None, placeholder
    assert (normalise("1:02:03;04"), normalise("01:02:03:04"), normalise("25:99:00:00")) == (
        "01:02:03;04", "01:02:03:04", None)


@pytest.mark.parametrize("ext", ["mp4", "mov", "mkv"])
def test_synthetic_tone_and_silence(tmp_path, ext):
    tone = probe_file(synth.make_video(tmp_path / f"tone.{ext}", frames=50, audio=synth.tone()))
    quiet = probe_file(synth.make_video(tmp_path / f"quiet.{ext}", frames=50, audio=synth.tone(amplitude=0.001)))
    silent = probe_file(synth.make_video(tmp_path / f"silent.{ext}", frames=50, audio=synth.silence()))
    assert tone["audio"]["silent"] is False and tone["audio"]["peak_dbfs"] > -20
    assert quiet["audio"]["silent"] is False and -75 < quiet["audio"]["peak_dbfs"] < -50  # quiet is not silence
    assert silent["audio"]["silent"] is True
    for p, silent_flag in ((tone, False), (quiet, False), (silent, True)):
        s = summarize(p)
        assert s["has_audio"] is True and s["audio_silent"] is silent_flag and s["audio_codec"] == "aac"
        assert p["audio"]["analysed_seconds"] > 0.5


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "m4a"])
def test_synthetic_audio_files(tmp_path, ext):
    tone = probe_file(synth.make_audio(tmp_path / f"tone.{ext}", seconds=12, sample_rate=44100, channels=2))
    silent = probe_file(synth.make_audio(tmp_path / f"silent.{ext}", seconds=3, signal=synth.silence()))
    a = tone["streams"][0]
    assert (tone["kind"], a["sample_rate"], a["channels"]) == ("audio", 44100, 2)
    assert tone["audio"]["silent"] is False and tone["audio"]["windows"] == 4
    assert tone["audio"]["analysed_seconds"] < 2.0  # bounded, however long the file
    assert silent["audio"]["silent"] is True
    s = summarize(tone)
    assert s["kind"] == "audio" and s["width"] is None and s["fps_num"] is None
    assert s["duration"] == pytest.approx(12, abs=0.1)
    assert s["container"] == {"wav": "wav", "flac": "flac", "mp3": "mp3", "m4a": "mp4"}[ext]
    assert s["audio_codec"] == {"wav": "pcm_s16le", "flac": "flac", "mp3": "mp3", "m4a": "aac"}[ext]


def test_synthetic_jpeg_exif(tmp_path):
    from PIL.TiffImagePlugin import IFDRational

    path = synth.make_image(
        tmp_path / "photo.jpg", width=320, height=200,
        exif={0x010F: "Acme", 0x0110: "Shooter 9", 0x0131: "fw 1.2", 0x0112: 6},
        exif_ifd={0x9003: "2022:01:02 03:04:05", 0x9011: "+02:00", 0x9291: "12",
                  0x829A: IFDRational(1, 250), 0x829D: IFDRational(28, 10), 0x8827: 400,
                  0x920A: IFDRational(35, 1), 0xA405: 50, 0xA434: "Acme 35mm f/2.8", 0x9209: 16,
                  0xA403: 0},
        gps={1: "N", 2: (IFDRational(48, 1), IFDRational(51, 1), IFDRational(2772, 100)),
             3: "E", 4: (IFDRational(2, 1), IFDRational(17, 1), IFDRational(42, 1)),
             5: b"\x00", 6: IFDRational(35, 1)})
    p = probe_file(path)
    ex = p["image"]["exif"]
    assert (ex["make"], ex["model"], ex["software"], ex["orientation"]) == ("Acme", "Shooter 9", "fw 1.2", 6)
    assert (ex["exposure_time"], ex["exposure_seconds"], ex["f_number"], ex["iso"]) == ("1/250", 0.004, 2.8, 400)
    assert (ex["focal_length"], ex["focal_length_35mm"], ex["lens_model"]) == (35.0, 50, "Acme 35mm f/2.8")
    assert (ex["flash"], ex["flash_fired"], ex["white_balance"]) == (16, False, "auto")
    assert p["image"]["orientation"] == 6 and (p["image"]["width"], p["image"]["height"]) == (320, 200)
    assert p["created"]["value"] == "2022-01-02T03:04:05.120000+02:00"
    assert p["gps"]["lat"] == pytest.approx(48.8577, abs=1e-6)
    assert p["gps"]["lon"] == pytest.approx(2.295, abs=1e-6)
    assert p["gps"]["alt"] == 35.0
    assert p["camera"]["lens"] == "Acme 35mm f/2.8"
    s = summarize(p)
    assert s == {**dict.fromkeys(SUMMARY_KEYS), "kind": "image", "container": "jpeg", "width": 320, "height": 200,
                 "captured_at": "2022-01-02T03:04:05.120000+02:00", "captured_utc": 1641085445.12,
                 "camera_make": "Acme", "camera_model": "Shooter 9"}
    assert p["warnings"] == []
    check_json(p)


@pytest.mark.parametrize("ext", ["png", "webp", "tiff", "gif", "bmp"])
def test_synthetic_other_stills(tmp_path, ext):
    p = probe_file(synth.make_image(tmp_path / f"still.{ext}", width=96, height=64))
    s = summarize(p)
    assert (s["kind"], s["container"], s["width"], s["height"]) == ("image", ext, 96, 64)
    assert p["warnings"] == [] and "created" not in p


def test_still_misnamed_as_video_is_probed_by_content(tmp_path):
    path = synth.make_image(tmp_path / "photo.jpg")
    path.rename(tmp_path / "photo.mp4")
    assert summarize(probe_file(tmp_path / "photo.mp4"))["kind"] == "image"


def test_file_object_sources(tmp_path):
    path = synth.make_video(tmp_path / "clip.mov", frames=30, audio=synth.tone())
    by_path = probe_file(path)
    with open(path, "rb") as fh:
        assert probe_file(fh, name="clip.mov") == by_path
    assert probe_file(io.BytesIO(path.read_bytes()), name="clip.mov") == by_path
    with pytest.raises(ProbeError, match="empty"):
        probe_file(io.BytesIO(b""), name="x.mp4")


# -- bad input ------------------------------------------------------------------------------------------

def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(ProbeError, match=r"empty file \(0 bytes\)"):
        probe_file(tmp_path / "empty.mp4")


def test_text_named_mp4(tmp_path):
    (tmp_path / "notes.mp4").write_text("shot list\n1. wide\n2. close-up — café\n" * 20, encoding="utf-8")
    with pytest.raises(ProbeError, match=r"not a media file.*text"):
        probe_file(tmp_path / "notes.mp4")


def test_random_bytes_named_mov(tmp_path):
    (tmp_path / "random.mov").write_bytes(np.random.default_rng(1).integers(0, 256, 100_000, np.uint8).tobytes())
    with pytest.raises(ProbeError, match="not a recognised media file"):
        probe_file(tmp_path / "random.mov")


def test_all_zero_file(tmp_path):
    (tmp_path / "prealloc.mp4").write_bytes(bytes(50_000))
    with pytest.raises(ProbeError, match="zero bytes"):
        probe_file(tmp_path / "prealloc.mp4")


def test_truncated_mp4_without_index(tmp_path):
    data = synth.make_video(tmp_path / "full.mp4", frames=50, audio=synth.tone()).read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])  # the moov index is at the end
    with pytest.raises(ProbeError, match="truncated"):
        probe_file(tmp_path / "half.mp4")


def test_truncated_faststart_mp4_probes_with_warning(tmp_path):
    src = synth.make_video(tmp_path / "full.mp4", frames=50, audio=synth.tone())
    fast = tmp_path / "fast.mp4"
    with av.open(str(src)) as inp, av.open(str(fast), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    data = fast.read_bytes()
    assert probe_file(fast)["warnings"] == []
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    p = probe_file(tmp_path / "cut.mp4")
    assert any("truncated" in w for w in p["warnings"]), p["warnings"]
    check_json(p)


@pytest.mark.parametrize(("name", "kw"), [("clip.avi", {"codec": "mjpeg", "pix_fmt": "yuvj420p"}),
                                          ("clip.mkv", {})])
def test_truncated_avi_and_mkv_probe_with_warning(tmp_path, name, kw):
    data = synth.make_video(tmp_path / name, frames=50, audio=synth.tone(), **kw).read_bytes()
    (tmp_path / f"cut_{name}").write_bytes(data[: len(data) // 2])
    try:
        p = probe_file(tmp_path / f"cut_{name}")
    except ProbeError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert any("truncated" in w for w in p["warnings"]), p["warnings"]


def test_truncated_wav_warns(tmp_path):
    data = synth.make_audio(tmp_path / "a.wav", seconds=2).read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    p = probe_file(tmp_path / "cut.wav")
    assert any("truncated" in w for w in p["warnings"])


def test_truncated_jpeg(tmp_path):
    data = synth.make_image(tmp_path / "full.jpg", exif={0x010F: "Acme"}).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    p = probe_file(tmp_path / "cut.jpg")
    assert any("truncated" in w for w in p["warnings"])
    (tmp_path / "stub.jpg").write_bytes(data[:40])  # not even a whole header
    with pytest.raises(ProbeError):
        probe_file(tmp_path / "stub.jpg")


def test_awkward_file_names(tmp_path):
    data = synth.make_video(tmp_path / "src.mp4", frames=10, audio=synth.tone()).read_bytes()
    names = ["with space 🎬 clip.mp4", "new\nline.mp4", "colon:in name.mp4", "file:looks-like-url.mp4"]
    for name in names:
        (tmp_path / name).write_bytes(data)
        assert summarize(probe_file(tmp_path / name))["video_codec"] == "h264", name
        assert summarize(probe_file(str(tmp_path / name)))["kind"] == "video", name


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="file system insists on Unicode names")
def test_invalid_utf8_bytes_path(tmp_path):
    data = synth.make_video(tmp_path / "src.mp4", frames=10).read_bytes()
    raw = os.fsencode(tmp_path) + b"/bad-\xff\xfe-name.mp4"
    with open(raw, "wb") as fh:
        fh.write(data)
    p = probe_file(raw)
    assert summarize(p)["kind"] == "video"
    assert p["streams"][0]["codec"] == "h264"


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        probe_file(tmp_path / "gone.mp4")
    with pytest.raises(FileNotFoundError):
        probe_file(os.fsencode(tmp_path / "gone.mp4"))


def test_bad_inputs_only_raise_probe_error(tmp_path):
    """Whatever the garbage, the only exception type is ProbeError and its reason is one line."""
    rng = np.random.default_rng(7)
    clip = synth.make_video(tmp_path / "c.mp4", frames=20, audio=synth.tone()).read_bytes()
    jpeg = synth.make_image(tmp_path / "i.jpg").read_bytes()
    samples = {
        "ftyp_only.mp4": clip[:32],
        "header_garbage.mov": clip[:64] + rng.integers(0, 256, 5000, np.uint8).tobytes(),
        "jpeg_head.jpg": jpeg[:200],
        "png_sig.png": b"\x89PNG\r\n\x1a\n" + bytes(20),
        "riff.wav": b"RIFF\xff\xff\xff\x7fWAVEfmt " + bytes(8),
        "ebml.mkv": b"\x1aE\xdf\xa3" + rng.integers(0, 256, 300, np.uint8).tobytes(),
        "ts.ts": (b"\x47" + bytes(187)) * 20,
        "one_byte.mp3": b"\xff",
    }
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
        try:
            p = probe_file(tmp_path / name)
        except ProbeError as exc:
            assert str(exc) and "\n" not in str(exc), name
        else:
            check_json(p)
