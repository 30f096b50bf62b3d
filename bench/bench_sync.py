#!/usr/bin/env python3
"""Audio sync: ours (bridge.sync.sync_files) against audio-offset-finder and syncstart (PyPI), in one run on the
same pairs with known offsets. Each tool runs as a subprocess (imports included), timed by wall clock, its peak
memory read from the kernel (wait4's ru_maxrss, which covers its ffmpeg children too), under a 10 GiB
address-space cap so a tool that wants more fails with MemoryError instead of pushing a shared machine into
swap. Short pairs run --repeat times and keep the best time (page cache and neighbours' load).

    python bench/bench_sync.py [--pairs corpus,speech,music,30min,2h] [--cache DIR] [--timeout 900] [--repeat 3]

Pairs (truth = where the second file starts in the first):
  corpus  ../shared/corpus audio/multicam timbl_2.mp3 in timbl_1.mp3, 12.254 s (48 kHz MP3)
  speech  the corpus speech files end to end (recorder, 48 kHz stereo) and another microphone: EQ, room,
          noise at 0 dB SNR, 100 ppm fast, 16 kHz
  music   music-like notes, chords and drums at 44.1 kHz; another microphone at 48 kHz, 0 dB SNR, 50 ppm slow
  30min   a 30-minute 48 kHz WAV recorder track (babble over music) and a 5-minute camera clip of it
  2h      a 2-hour 48 kHz WAV recorder track and a 30-minute camera clip of it (band-pass, 10 dB SNR)
The long files are generated streaming (a few minutes for 2 h); --cache keeps them between runs.

Settings chosen for the anchors (both are given the whole search range the truth needs):
  audio-offset-finder 0.5.5: find_offset_between_files(ref, clip) with its defaults (fs 8000, hop 128: 16 ms
    steps, no trim, so every lag is searched; it correlates the first 2000 MFCC frames, 32 s, of one file).
  syncstart 1.1.1: its CLI `syncstart REF CLIP -s -q -t TAKE` (no plot, CSV out) with TAKE = truth + the clip's
    length + 5 s, capped by the files, so the true overlap lies inside the correlated span; it correlates raw
    samples at the higher of the two sample rates.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bridge.sync import decode  # noqa: E402
from bridge.sync.testsignals import make_long_pair, music, other_microphone, write  # noqa: E402

CORPUS = Path(os.environ.get("MEDIAIDX_CORPUS", REPO.parent / "shared" / "corpus")) / "audio"
PY = sys.executable
MEM_CAP = 10 << 30

OURS = ("import json, sys; from bridge.sync import sync_files; r = sync_files(sys.argv[1:3])[1]; "
        "print(json.dumps({'offset': r.offset_seconds, 'status': r.status, 'drift_ppm': r.drift_ppm, "
        "'confidence': r.confidence}))")
AOF = ("import json, sys, warnings; warnings.simplefilter('ignore'); "
       "from audio_offset_finder.audio_offset_finder import find_offset_between_files as f; "
       "r = f(sys.argv[1], sys.argv[2]); "
       "print(json.dumps({'offset': float(r['time_offset']), 'score': float(r['standard_score'])}))")


# A small launcher between us and each tool: a forked child's peak RSS starts at its parent's RSS (Linux keeps
# the pre-exec high-water mark), so the tool is started from this ~10 MB process rather than from the bench,
# which holds generated audio. It reports the tool's ru_maxrss, which covers the children the tool waited for.
LAUNCH = ("import json, os, subprocess, sys; p = subprocess.Popen(sys.argv[2:]); _, st, ru = os.wait4(p.pid, 0); "
          "open(sys.argv[1], 'w').write(json.dumps({'rc': os.waitstatus_to_exitcode(st), 'kib': ru.ru_maxrss}))")


def run(cmd: list[str], timeout: float) -> dict:
    """Wall time, peak RSS (MiB: the tool and the children it waited for) and stdout of one tool run."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEM_CAP, MEM_CAP))

    with tempfile.TemporaryDirectory() as td:
        report = Path(td) / "peak.json"
        out_path, err_path = Path(td) / "out", Path(td) / "err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            t = time.perf_counter()
            p = subprocess.Popen([PY, "-c", LAUNCH, str(report), *cmd], stdout=out, stderr=err, cwd=REPO,
                                 preexec_fn=cap, start_new_session=True,
                                 env={**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)})
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait()
                return {"ok": False, "why": f"timeout {timeout:.0f} s", "seconds": time.perf_counter() - t,
                        "peak_mib": float("nan")}
            seconds = time.perf_counter() - t
        stdout = out_path.read_text(errors="replace")
        stderr = err_path.read_text(errors="replace")
        doc = json.loads(report.read_text()) if report.exists() else {"rc": p.returncode, "kib": float("nan")}
    row = {"ok": doc["rc"] == 0, "seconds": seconds, "peak_mib": doc["kib"] / 1024, "stdout": stdout}
    if doc["rc"] != 0:
        last = [ln for ln in stderr.strip().splitlines() if ln.strip()][-1:] or [f"exit {doc['rc']}"]
        row["why"] = "MemoryError" if "MemoryError" in stderr else last[0][:80]
    return row


def ours(ref: Path, clip: Path, timeout: float) -> dict:
    r = run([PY, "-c", OURS, str(ref), str(clip)], timeout)
    if r["ok"]:
        doc = json.loads(r["stdout"].strip().splitlines()[-1])
        r["offset"] = doc["offset"]
        if doc["status"] != "synced":
            r["ok"], r["why"] = False, "unsynced"
    return r


def aof(ref: Path, clip: Path, timeout: float) -> dict:
    r = run([PY, "-c", AOF, str(ref), str(clip)], timeout)
    if r["ok"]:
        r["offset"] = json.loads(r["stdout"].strip().splitlines()[-1])["offset"]
    return r


def syncstart(ref: Path, clip: Path, truth: float, timeout: float) -> dict:
    exe = shutil.which("syncstart", path=str(Path(PY).parent)) or "syncstart"
    d_ref, d_clip = decode.info(str(ref)).duration, decode.info(str(clip)).duration
    take = min(max(d_ref, d_clip), max(0.0, truth) + d_clip + 5.0)
    r = run([exe, str(ref), str(clip), "-s", "-q", "-t", f"{take:.3f}"], timeout)
    r["take"] = take
    # its console script exits with the returned tuple (status 1) after printing "FILE,SECONDS": FILE is the one
    # to cut to get in sync, the reference when the clip starts later
    csv = [ln for ln in r["stdout"].splitlines() if ln.startswith((str(ref) + ",", str(clip) + ","))]
    if csv:
        name, _, secs = csv[-1].rpartition(",")
        r["offset"] = float(secs) if Path(name) == ref else -float(secs)
        r["ok"] = True
        r.pop("why", None)
    return r


def make_pairs(names: list[str], tmp: Path, cache: Path) -> list[tuple[str, Path, Path, float]]:
    pairs = []
    for name in names:
        if name == "corpus":
            mc = CORPUS / "multicam"
            if mc.exists():
                pairs.append(("corpus timbl (MP3 48k)", mc / "timbl_1.mp3", mc / "timbl_2.mp3", 12.254))
        elif name == "speech":
            files = ["multicam/timbl_1.mp3", "speech/jfk.flac", "speech/librivox_sense_and_sensibility_0870.wav",
                     "speech/librivox_sense_and_sensibility_0880.wav",
                     "speech/librivox_sense_and_sensibility_0930.wav", "speech/cards_005.wav"]
            if not (CORPUS / "speech").exists():
                continue
            src = np.concatenate([decode.window(str(CORPUS / f), 0.0, 60.0, 48000) for f in files])
            src = 0.3 * src / np.max(np.abs(src))
            ref = write(tmp / "speech_recorder.wav", src, 48000, channels=2)
            cam = other_microphone(src, 48000, 17.3217, 35.0, 16000, drift_ppm=100.0, snr_db=0.0, seed=2)
            pairs.append(("speech, 2nd mic 16k 0dB 100ppm", ref, write(tmp / "speech_cam.wav", cam, 16000), 17.3217))
        elif name == "music":
            src = music(90.0, 44100, seed=12)
            ref = write(tmp / "music_recorder.wav", src, 44100, channels=2)
            cam = other_microphone(src, 44100, 23.5041, 40.0, 48000, drift_ppm=-50.0, snr_db=0.0, seed=13)
            pairs.append(("music, 2nd mic 48k 0dB -50ppm", ref, write(tmp / "music_cam.wav", cam, 48000), 23.5041))
        elif name in ("30min", "2h"):
            ref_s, start, clip_s = (1800.0, 1234.567, 300.0) if name == "30min" else (7200.0, 2473.25, 1800.0)
            folder = cache / name
            ref, clip = folder / f"recorder_{ref_s:g}s.wav", folder / f"camera_{clip_s:g}s.wav"
            if not (ref.exists() and clip.exists()):
                folder.mkdir(parents=True, exist_ok=True)
                t = time.perf_counter()
                print(f"(generating {name}: {ref_s:g} s and {clip_s:g} s at 48 kHz ...)", flush=True)
                ref, clip = make_long_pair(folder, ref_seconds=ref_s, clip_start=start, clip_seconds=clip_s,
                                           seed=3 if name == "2h" else 4)
                print(f"(generated in {time.perf_counter() - t:.0f} s)", flush=True)
            pairs.append((f"{name}: {clip_s / 60:g} min clip in {ref_s / 60:g} min", ref, clip, start))
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="corpus,speech,music,30min,2h")
    ap.add_argument("--cache", type=Path, help="keep the generated long files here (default: a temp dir, removed)")
    ap.add_argument("--timeout", type=float, default=900.0, help="per tool and pair, seconds")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--tools", default="ours,aof,syncstart", help="a subset, when iterating on ours")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool on the short pairs (best time kept)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_sync_") as tmpdir:
        tmp = Path(tmpdir)
        pairs = make_pairs(args.pairs.split(","), tmp, args.cache or tmp)
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        print(f"{'pair':<32} {'truth s':>10} | {'tool':<10} {'error ms':>9} {'time s':>7} {'peak MiB':>8}  note")
        rows = []
        for label, ref, clip, truth in pairs:
            tools = args.tools.split(",")
            repeat = 1 if label.startswith(("30min", "2h")) else args.repeat
            res = {}
            for _ in range(repeat):   # round-robin, keeping each tool's fastest run
                for tool in tools:
                    r = (ours(ref, clip, args.timeout) if tool == "ours" else aof(ref, clip, args.timeout)
                         if tool == "aof" else syncstart(ref, clip, truth, args.timeout))
                    if tool not in res or r["seconds"] < res[tool]["seconds"]:
                        res[tool] = r
            for tool, r in res.items():
                r["error_ms"] = abs(r["offset"] - truth) * 1000 if r.get("offset") is not None else None
                note = r.get("why", "") if not r["ok"] else (f"take {r['take']:.0f} s" if "take" in r else "")
                print(f"{label:<32} {truth:>10.4f} | {tool:<10} {fmt(r['error_ms'], '9.4f')} {r['seconds']:7.2f} "
                      f"{r['peak_mib']:8.0f}  {note}", flush=True)
            o = res.get("ours")
            for tool in ("aof", "syncstart"):
                a = res.get(tool)
                if not (o and a):
                    continue
                # errors within 1 us of each other (1/20 of a sample at 48 kHz) count as a tie
                better = ("n/a" if o["error_ms"] is None else "yes" if a["error_ms"] is None
                          else "yes" if o["error_ms"] <= a["error_ms"] else "tie (< 1 us)"
                          if o["error_ms"] <= a["error_ms"] + 1e-3 else "NO")
                speed = (f"{tool} {a['seconds'] / o['seconds']:.1f}x our time" if a["ok"]
                         else f"{tool} failed ({a.get('why', '')}) after {a['seconds']:.1f} s")
                print(f"{'':<32} {'':>10} | ours vs {tool}: {speed}; ours at least as accurate: {better}")
            rows.append({"pair": label, "truth": truth, **{k: {kk: vv for kk, vv in v.items() if kk != "stdout"}
                                                          for k, v in res.items()}})
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
