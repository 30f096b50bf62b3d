"""Group sync of one shoot: a sound recorder and cameras started and stopped, some clips sharing sound only with
another camera, one unrelated. The event is real speech (the corpus speech files) and music-like sound, so every
clip's true place is known; and the graph logic on its own (chains, drift composition, conflicting cycles)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.sync import decode, sync_files
from bridge.sync.align import SyncResult
from bridge.sync.group import place_group
from bridge.sync.testsignals import babble, music, other_microphone, write

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "audio"
RATE = 16000


def event() -> np.ndarray:
    """About 150 s: the corpus speech recordings with music-like passages between them."""
    parts = []
    for i, name in enumerate(["multicam/timbl_1.mp3", None, "speech/jfk.flac",
                              "speech/librivox_sense_and_sensibility_0870.wav", None,
                              "speech/librivox_sense_and_sensibility_0880.wav",
                              "speech/librivox_sense_and_sensibility_0930.wav", "speech/cards_005.wav", None]):
        if name is None:
            parts.append(music(20.0 + 5 * i, RATE, seed=40 + i))
        else:
            x = decode.window(str(CORPUS / name), 0.0, 60.0, RATE)
            parts.append(0.3 * x / np.max(np.abs(x)))
    return np.concatenate(parts)


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.exists(), reason="needs ../shared/corpus (audio/speech, audio/multicam)")
def test_a_shoot_is_placed_on_one_timeline(tmp_path: Path) -> None:
    src = event()
    assert len(src) / RATE > 145
    rec = write(tmp_path / "recorder.wav", src[: 100 * RATE], RATE, channels=2)   # event 0..100 s
    # (file, event start, length, camera rate, drift ppm, SNR dB): the truth
    cams = [("camA.m4a", 10.0, 30.0, 48000, 40.0, 0.0),     # inside the recorder
            ("camD.flac", 60.0, 30.0, 16000, -60.0, 6.0),   # recorder and camB: closes a cycle
            ("camB.wav", 85.0, 35.0, 48000, 100.0, 6.0),    # 15 s of the recorder, 10 s of camC
            ("camC.m4a", 110.0, 35.0, 16000, -30.0, 6.0)]   # after the recorder stopped: only camB shares sound
    files = [str(rec)]
    for k, (name, start, length, rate, drift, snr) in enumerate(cams):
        x = other_microphone(src, RATE, start, length, rate, drift_ppm=drift, snr_db=snr, seed=60 + k)
        files.append(str(write(tmp_path / name, x, rate)))
    files.append(str(write(tmp_path / "elsewhere.wav", babble(30.0, RATE, seed=99), RATE)))
    files.append(str(write(tmp_path / "other_song.flac", music(30.0, RATE, seed=98), RATE)))

    results = {Path(r.path).name: r for r in sync_files(files[::-1])}   # order does not matter: longest is ref
    assert results["recorder.wav"].status == "reference"
    for name, start, _length, _rate, drift, _snr in cams:
        r = results[name]
        assert r.status == "synced", (name, r.reason)
        assert r.reference == str(rec)
        assert r.offset_seconds == pytest.approx(start, abs=0.005), name
        if r.drift_ppm is not None:
            assert r.drift_ppm == pytest.approx(drift, abs=40), name
    assert results["camC.m4a"].via is not None and Path(results["camC.m4a"].via).name == "camB.wav"
    assert results["camA.m4a"].via is None
    for name in ("elsewhere.wav", "other_song.flac"):
        r = results[name]
        assert r.status == "unsynced" and r.offset_seconds is None, r
        assert "no other clip shares sound" in r.reason
    # the explicit reference gives the same timeline
    again = {Path(r.path).name: r for r in sync_files(files, reference=str(rec))}
    assert again["camC.m4a"].offset_seconds == pytest.approx(110.0, abs=0.005)


def _ok(offset: float, drift: float | None = None) -> SyncResult:
    return SyncResult(path="", reference="", status="synced", offset_seconds=offset, drift_ppm=drift)


def test_offsets_and_drift_compose_along_a_chain() -> None:
    # 0 = reference; 1 overlaps 0; 2 overlaps only 1; 3 overlaps nothing.
    coarse = {(0, 1): [(50.0, 30.0)], (0, 2): [(3.0, 1.0)], (1, 2): [(40.0, 20.0)], (0, 3): [(7.0, 2.0)],
              (1, 3): [(1.0, 1.5)], (2, 3): [(2.0, 0.5)]}
    calls = []

    def verify(a: int, b: int, co: tuple[float, float]) -> SyncResult:
        calls.append((a, b))
        return {(0, 1): _ok(50.0, 100.0), (1, 2): _ok(40.0, -20.0)}[(a, b)]

    placed, _why = place_group(4, 0, coarse, [3600.0, 120.0, 100.0, 50.0], verify)
    assert calls == [(0, 1), (1, 2)]          # weak coarse edges are never even verified
    assert placed[1].offset == pytest.approx(50.0) and placed[1].parent == 0
    # clip 2's t = 0 is clip 1's t = 40, i.e. 50 + 40 * (1 - 100e-6) on the reference
    assert placed[2].offset == pytest.approx(50.0 + 40.0 * (1 - 100e-6)) and placed[2].parent == 1
    assert placed[2].scale == pytest.approx((1 - 100e-6) * (1 + 20e-6))
    assert placed[2].confidence == 20.0
    assert 3 not in placed


def test_a_rejected_edge_falls_back_to_the_next_best() -> None:
    coarse = {(0, 1): [(10.0, 30.0)], (0, 2): [(99.0, 25.0)], (1, 2): [(5.0, 8.0)]}

    def verify(a: int, b: int, co: tuple[float, float]) -> SyncResult:
        if (a, b) == (0, 2):
            return SyncResult(path="", reference="", status="unsynced", reason="no consistent offset")
        return _ok(co[0])

    placed, _why = place_group(3, 0, coarse, [600.0, 60.0, 60.0], verify)
    assert placed[2].parent == 1 and placed[2].offset == pytest.approx(15.0)


def test_conflicting_cycle_leaves_clips_unsynced_not_wrong() -> None:
    # 1 and 2 both verified against the reference; their own edge (also verified) says 2 s, the tree says 20 s.
    coarse = {(0, 1): [(10.0, 40.0)], (0, 2): [(30.0, 12.0)], (1, 2): [(2.0, 9.0)]}

    def verify(a: int, b: int, co: tuple[float, float]) -> SyncResult:
        return _ok(co[0])

    placed, why = place_group(3, 0, coarse, [600.0, 60.0, 60.0], verify)
    assert set(placed) == {0, 1}              # the weakest tree edge on the cycle (0-2) is cut
    assert why[2].startswith("conflicting offsets")


def test_consistent_cycle_keeps_everything() -> None:
    coarse = {(0, 1): [(10.0, 40.0)], (0, 2): [(30.0, 12.0)], (1, 2): [(20.004, 9.0)]}
    placed, why = place_group(3, 0, coarse, [600.0, 60.0, 60.0], lambda a, b, co: _ok(co[0]))
    assert set(placed) == {0, 1, 2} and not why
