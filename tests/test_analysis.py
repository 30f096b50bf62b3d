"""Shots, key frames, hero images and contact sheets (bridge/analysis) on clips whose truth is known:
ffmpeg test-source clips joined by cuts, fades and dissolves, numpy clips of sharp, blurred, black and flash
frames, the corpus film excerpts with their MANIFEST cut times, and the catalog path (scan --analyze)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from bridge import MediaIndexer, synth
from bridge.analysis import (
    AnalysisError,
    Boundary,
    ContentDetector,
    analyze_video,
    detect_shots,
    write_contact_sheet,
    write_hero,
)
from bridge.analysis.sheet import HEADER, LABEL, PAD
from bridge.analysis.synthclips import Segment, make_clip

CLI = [sys.executable, "-m", "bridge.cli.app"]
TOL = 2  # frames

SEGMENTS = [
    Segment("testsrc2", 60),
    Segment("smptebars", 75),
    Segment("mandelbrot", 75, "fade", 16),
    Segment("testsrc", 75, "dissolve", 25),
    Segment("rgbtestsrc", 50, "cut"),
]


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    path = tmp_path_factory.mktemp("shots") / "joined.mp4"
    truth = make_clip(path, SEGMENTS)
    return path, truth


def _matches(found: list[Boundary], truth: list, tol: int = TOL) -> list[tuple]:
    pairs = []
    used: set[int] = set()
    for t in truth:
        best = min((b for b in found if id(b) not in used), key=lambda b: abs(b.frame - t.frame), default=None)
        if best is not None and abs(best.frame - t.frame) <= tol:
            used.add(id(best))
            pairs.append((t, best))
    return pairs


def test_cuts_fades_and_dissolves_are_found_within_two_frames_and_typed(joined) -> None:
    path, truth = joined
    assert [t.kind for t in truth] == ["cut", "fade", "dissolve", "cut"]
    r = detect_shots(path)
    pairs = _matches(r.boundaries, truth)
    assert len(pairs) == len(truth), (truth, r.boundaries)
    assert len(r.boundaries) == len(truth), f"extra boundaries: {r.boundaries}"
    for t, b in pairs:
        assert b.kind == t.kind, (t, b)
    assert len(r.shots) == len(truth) + 1
    assert r.shots[0].start_frame == 0 and r.shots[-1].end_frame == r.frames - 1
    for a, b in zip(r.shots, r.shots[1:], strict=False):
        assert b.start_frame == a.end_frame + 1 and b.start_time > a.start_time
    fade = next(b for _t, b in pairs if b.kind == "fade")
    assert fade.start < fade.frame <= fade.end  # the fade-out and fade-in are the transition
    d = r.to_dict()
    assert set(d["shots"][1]) >= {"start_frame", "end_frame", "start_time", "end_time", "boundary", "score"}


def test_detectors_are_pluggable(joined) -> None:
    path, _truth = joined

    class Every100:
        name = "every100"

        def start(self, fps: float) -> None:
            self.n = 0

        def process(self, f, stats) -> None:
            self.n += 1

        def finish(self, stats) -> list[Boundary]:
            pos = next(i for i, frame in enumerate(stats.index) if frame >= 100)  # detectors count positions
            return [Boundary(pos, "cut", 1.0, pos, pos, self.name)]

    only_cuts = detect_shots(path, detectors=[ContentDetector()])
    assert {b.kind for b in only_cuts.boundaries} <= {"cut"}
    assert any(abs(b.frame - 60) <= TOL for b in only_cuts.boundaries)
    custom = detect_shots(path, detectors=[Every100()])
    assert [b.frame for b in custom.boundaries] == [next(f for f in custom.stats.index if f >= 100)]
    assert 100 <= custom.boundaries[0].frame <= 100 + TOL


def test_a_flash_frame_is_not_a_cut(tmp_path: Path) -> None:
    path = synth.make_video(tmp_path / "flash.mp4", frames=80, frame_fn=synth.sequence(
        (40, synth.bars), (1, synth.solid(255)), (39, lambda i, w, h: synth.bars(i + 41, w, h))))
    r = detect_shots(path)
    assert r.boundaries == [], r.boundaries


def _manifest_cuts(notes: str) -> list[float]:
    m = re.search(r"near ([\d.,\s]+) s", notes)
    return [float(x) for x in m.group(1).replace(" ", "").split(",") if x] if m else []


@pytest.mark.corpus
def test_corpus_cuts_f1_at_least_095(corpus: Path, corpus_manifest: dict[str, dict[str, str]]) -> None:
    rows = {p: r for p, r in corpus_manifest.items() if p.startswith("video/shots/")}
    assert rows, "no video/shots rows in the MANIFEST"
    tp = fp = fn = 0
    for rel, row in sorted(rows.items()):
        truth = _manifest_cuts(row["notes"])
        assert truth, f"no cut times in the notes of {rel}"
        r = detect_shots(corpus / rel)
        found = [r.stats.time[r.stats.index.index(b.frame)] if b.frame in r.stats.index else b.frame / r.info.fps
                 for b in r.boundaries]
        tol = TOL / r.info.fps
        left = list(found)
        for t in truth:
            hit = min(left, key=lambda x: abs(x - t), default=None)
            if hit is not None and abs(hit - t) <= tol:
                tp += 1
                left.remove(hit)
            else:
                fn += 1
        fp += len(left)
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.95, f"F1 {f1:.3f} (tp {tp}, fp {fp}, fn {fn})"


def _texture(seed: int = 3, w: int = 320, h: int = 240) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(30, 226, (h // 20, w // 20, 3)).astype(np.uint8)
    img = np.kron(blocks, np.ones((20, 20, 1), dtype=np.uint8))
    fine = rng.integers(-25, 26, (h, w, 1))
    return np.clip(img.astype(int) + fine, 0, 255).astype(np.uint8)


def _moving(img: np.ndarray):
    return lambda i, w, h: np.roll(img, i, axis=1)


def test_hero_is_the_sharp_well_exposed_frame_not_blurred_black_or_flash(tmp_path: Path) -> None:
    sharp = _texture()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4)
    under = (sharp * 0.25).astype(np.uint8)
    over = np.clip(sharp.astype(int) + 150, 0, 255).astype(np.uint8)
    parts = [(25, _moving(blurred)), (12, synth.solid(0)), (25, _moving(sharp)), (12, synth.solid(255)),
             (25, _moving(under)), (25, _moving(over))]
    path = synth.make_video(tmp_path / "quality.mp4", frames=sum(n for n, _ in parts), frame_fn=synth.sequence(*parts),
                            codec="libx264")
    a = analyze_video(path)
    assert a.hero is not None
    assert 37 <= a.hero.frame < 62, (a.hero.frame, a.hero.scores)
    for key in ("sharpness", "exposure", "colourfulness", "faces", "stillness", "total", "rejected"):
        assert key in a.hero.scores
    assert a.hero.scores["rejected"] is None
    blurred_pick = next(p for p in a.keyframes if p.frame < 25)
    assert blurred_pick.scores["sharpness"] < a.hero.scores["sharpness"]
    out = write_hero(a, tmp_path / "hero.jpg")
    with Image.open(out) as im:
        assert im.size == (320, 240)


@pytest.mark.corpus
def test_faces_weigh_in(corpus: Path, tmp_path: Path) -> None:
    src = corpus / "images" / "exif" / "canon_eos_7d.jpg"
    if not src.is_file():
        pytest.skip("canon_eos_7d.jpg not in this corpus")
    im = Image.open(src).convert("RGB")
    im.thumbnail((480, 480))
    w, h = im.width // 2 * 2, im.height // 2 * 2
    upright = np.asarray(im)[:h, :w].copy()
    upside_down = upright[::-1, ::-1].copy()  # same pixels, same sharpness and colour: only the face is lost
    path = synth.make_video(tmp_path / "faces.mp4", width=w, height=h, frames=60,
                            frame_fn=synth.sequence((30, lambda i, *_: upside_down), (30, lambda i, *_: upright)))
    a = analyze_video(path)
    assert len(a.keyframes) == 2, a.to_dict()["shots"]
    first, second = a.keyframes
    if second.scores["face_count"] == 0:
        pytest.skip("the Haar cascade finds no face in this image at analysis size")
    assert first.scores["face_count"] == 0
    assert a.hero is not None and a.hero.shot == second.shot
    assert a.hero.scores["faces"] > 0


def test_keyframes_one_per_shot_and_contact_sheet(joined, tmp_path: Path) -> None:
    path, _truth = joined
    a = analyze_video(path)
    shots = a.shots.shots
    assert [p.shot for p in a.keyframes] == [s.index for s in shots]
    transition = a.shots.transition_frames()
    for p, s in zip(a.keyframes, shots, strict=True):
        assert s.start_frame <= p.frame <= s.end_frame
        assert p.frame not in transition
        assert p.scores["total"] > 0 and "sharpness" in p.scores
    out = write_contact_sheet(a, tmp_path / "sheet.jpg", columns=3, thumb_width=200)
    n = len(a.keyframes)
    rows = math.ceil(n / 3)
    with Image.open(out) as im:
        assert im.size == (PAD + 3 * (200 + PAD), HEADER + PAD + rows * (round(200 * 240 / 320) + LABEL + PAD))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_cli_shots_json_and_clear_errors(joined, tmp_path: Path) -> None:
    path, truth = joined
    r = run_cli("shots", str(path), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert len(d["shots"]) == len(truth) + 1
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mov"
    junk.write_bytes(bytes(range(256)) * 40)
    audio = synth.make_audio(tmp_path / "tone.wav", seconds=0.5)
    cases = [("shots", empty, "empty"), ("hero", junk, "not a readable video"), ("keyframes", audio, "no video stream")]
    for cmd, f, words in cases:
        extra = ["--out", str(tmp_path / "x.jpg")] if cmd == "hero" else []
        r = run_cli(cmd, str(f), *extra)
        assert r.returncode == 1, (cmd, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and words in r.stderr, r.stderr
    with pytest.raises(AnalysisError):
        detect_shots(empty)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} \
        if folder.exists() else {}


def test_scan_analyze_stores_shots_and_hero_and_dry_run_writes_nothing(joined, tmp_path: Path) -> None:
    path, truth = joined
    root = tmp_path / "media"
    root.mkdir()
    (root / "joined.mp4").write_bytes(path.read_bytes())
    synth.make_image(root / "still.jpg", width=64, height=48)
    cat, cache = tmp_path / "c.sqlite", tmp_path / "cache"
    ix = MediaIndexer(cat, cache_dir=cache)
    # Dry: a plan with the analysis, and not a byte written.
    summary = ix.scan(root, analyze=True, dry_run=True)
    assert any(p.action == "analyze" and p.path.endswith("joined.mp4") for p in summary.plan)
    assert not cat.exists() and _tree(cache) == {}
    # A scan without analysis, then a dry MediaIndexer.analyze: still nothing written.
    ix.scan(root)
    asset = ix.get(str(root / "joined.mp4")).id
    ix.close()
    before, cache_before = cat.read_bytes(), _tree(cache)
    plan = MediaIndexer(cat, cache_dir=cache).analyze(asset, dry_run=True)
    assert plan["dry_run"] and {p["action"] for p in plan["plan"]} >= {"analyze", "write"}
    assert cat.read_bytes() == before and _tree(cache) == cache_before
    assert MediaIndexer(cat, cache_dir=cache).hero_image(asset) is None
    # A real scan --analyze of a changed file stores shots, key frames and the hero.
    (root / "joined.mp4").write_bytes(path.read_bytes() + b"\0" * 16)
    r = run_cli("--catalog", str(cat), "--cache-dir", str(cache), "scan", str(root), "--analyze", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["changed"] == 1
    ix = MediaIndexer(cat, cache_dir=cache)
    shots = ix.shots(asset)
    assert len(shots) == len(truth) + 1
    assert [s["boundary"] for s in shots[1:]] == [t.kind for t in truth]
    assert all(s["keyframe"] and "total" in s["keyframe"]["scores"] for s in shots)
    hero = ix.hero_image(asset)
    assert hero is not None and hero.is_file() and hero.read_bytes()[:3] == b"\xff\xd8\xff"
    assert hero.parent.parent == cache / "thumbs"
    still = ix.get(str(root / "still.jpg")).id
    assert ix.hero_image(still) is None and ix.shots(still) == []
    # The file is overwritten in place and rescanned without --analyze: its old shots and hero are stale.
    (root / "joined.mp4").write_bytes(path.read_bytes() + b"\1" * 32)
    assert ix.scan(root).changed == 1
    assert ix.hero_image(asset) is None and ix.shots(asset) == []
    ix.close()


def test_service_thumbnail_prefers_the_hero_image(joined, tmp_path: Path, bridge_process) -> None:
    from blender_mediaidx.core.client import BridgeClient

    path, _truth = joined
    root = tmp_path / "media"
    root.mkdir()
    (root / "analysed.mp4").write_bytes(path.read_bytes())
    synth.make_video(root / "plain.mp4", frames=10, width=64, height=48)
    cat, cache = tmp_path / "c.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(root, thumbs=True)
        plain = ix.get(str(root / "plain.mp4")).id
        analysed = ix.get(str(root / "analysed.mp4")).id
        poster = Path(ix.get(analysed).thumb).read_bytes()
        assert ix.analyze(analysed)["error"] is None
        hero = ix.hero_image(analysed)
        assert hero is not None and hero.read_bytes() != poster
        plain_thumb = Path(ix.get(plain).thumb).read_bytes()
    bridge = bridge_process(cat, cache)
    c = BridgeClient(bridge.endpoint, name="tester", heartbeat_s=0.2, dead_after_s=1.0).start()
    try:
        assert c.wait(lambda: c.state == "connected", 10), c.last_error
        assert c.call("thumbnail", {"asset": analysed})["data"] == hero.read_bytes()
        assert c.call("thumbnail", {"asset": plain})["data"] == plain_thumb
    finally:
        c.stop()


def test_a_version_1_catalog_gains_the_analysis_tables(tmp_path: Path) -> None:
    import sqlite3

    from bridge.catalog import SCHEMA_VERSION, Catalog

    root = tmp_path / "media"
    root.mkdir()
    synth.make_image(root / "a.jpg", width=32, height=32)
    cat = tmp_path / "c.sqlite"
    with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix:
        ix.scan(root)
    conn = sqlite3.connect(cat)  # back to what version 1 had
    conn.executescript("DROP TABLE keyframes; DROP TABLE shots; DROP TABLE analyses; PRAGMA user_version = 1;")
    conn.close()
    with Catalog(cat) as db:
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
        tables = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"analyses", "shots", "keyframes"} <= tables
        assert db.conn.execute("SELECT count(*) FROM assets").fetchone()[0] == 1


def test_analyze_pending_works_through_a_library_scanned_without_analysis(tmp_path: Path) -> None:
    """A library indexed without --analyze: a later `scan --analyze` only analyses new and changed clips, so
    `analyze --pending` is how its videos get shots, key frames and heroes: all of them, failures (a clip
    damaged since its scan, one deleted) reported without stopping the rest, the dry run writing nothing, and a
    second run finding only the failures left."""
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("0gone.mp4", "1bad.mp4", "a.mp4", "b.mov"):  # the failures come first
        synth.make_video(lib / name, frames=30, width=96, height=64)
    synth.make_image(lib / "still.jpg", width=32, height=24)
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    base = ["--catalog", str(cat), "--cache-dir", str(cache)]
    assert run_cli(*base, "scan", str(lib), "--json").returncode == 0
    (lib / "1bad.mp4").write_bytes((lib / "1bad.mp4").read_bytes()[:2000])  # damaged after its scan
    (lib / "0gone.mp4").unlink()
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ids = {a.name: a.id for a in ix.search(limit=10)}
        videos = sorted(ids[n] for n in ("0gone.mp4", "1bad.mp4", "a.mp4", "b.mov"))
        assert sorted(ix.pending_analysis()) == videos
        assert sorted(ix.pending_analysis(str(lib))) == videos
    before = cat.read_bytes()
    dry = run_cli(*base, "analyze", "--pending", "--dry-run", "--json")
    assert cat.read_bytes() == before and not list(cache.rglob("*.hero.jpg"))
    assert dry.returncode == 1  # the two failures are reported in the dry run too
    plans = json.loads(dry.stdout)["results"]
    assert sorted(p["asset"] for p in plans if p.get("plan")) == sorted([ids["a.mp4"], ids["b.mov"]])
    r = run_cli(*base, "analyze", "--pending")
    assert r.returncode == 1 and "analysed 2, up to date 0, failed 2" in r.stdout, r.stderr
    assert "0gone.mp4" in r.stderr and "1bad.mp4" in r.stderr and "Traceback" not in r.stderr
    with MediaIndexer(cat, cache_dir=cache) as ix:
        assert sorted(ix.pending_analysis()) == sorted([ids["0gone.mp4"], ids["1bad.mp4"]])
        assert ix.shots(ids["a.mp4"]) and ix.hero_image(ids["b.mov"]) is not None
    typo = run_cli(*base, "analyze", "--pending", "--root", str(tmp_path / "nope"))
    assert typo.returncode == 1 and "nope" in typo.stderr  # not "nothing to analyse"
    assert run_cli(*base, "analyze", "--root", str(lib)).returncode == 2
