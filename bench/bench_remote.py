#!/usr/bin/env python3
"""Network storage, against its anchors in the same run, on a real S3 endpoint (moto's server mode in its
own process on loopback).

1. Rescan of an unchanged 10,000-object bucket (100 folders x 100 clips) against a bare s3fs listing of the
   same prefix (``S3FileSystem(...).find(prefix, detail=True)``), each with a fresh client. Target <= 1.5x.
2. Probe (and thumbnail) of a remote clip over 100 MB by ranged reads: bytes fetched against the clip's
   size (target < 5%), requests made, and the time against probing the same clip from a local disk.

    .venv/bin/python bench/bench_remote.py [--objects 10000] [--clip-mb 110] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bridge import MediaIndexer, synth  # noqa: E402
from bridge.storage import open_storage  # noqa: E402

KEY, SECRET = "AKIDBENCH", "bench-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start")


def s3_client(endpoint: str):  # boto3 has no public client type
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                        region_name="us-east-1")


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_rescan(endpoint: str, work: Path, objects: int, repeat: int) -> None:
    import s3fs

    client = s3_client(endpoint)
    client.create_bucket(Bucket="bench")
    folders = max(1, objects // 100)
    keys = [f"proj/shots/sh{f:03d}/plate_{i:03d}.mov" for f in range(folders) for i in range(objects // folders)]
    t = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket="bench", Key=k, Body=b"x" * 1024), keys))
    print(f"uploaded {len(keys)} objects in {time.perf_counter() - t:.1f} s")
    url = f"s3+{endpoint}/bench/proj"
    cat = work / "rescan.sqlite"
    with MediaIndexer(cat, cache_dir=work / "rescan-cache") as ix:
        first = timed(lambda: ix.scan(url, probe=False))
        print(f"first index (metadata only): {first:.2f} s, {ix.count(None)} assets")

    def listing() -> None:
        fs = s3fs.S3FileSystem(key=KEY, secret=SECRET, client_kwargs={"endpoint_url": endpoint,
                               "region_name": "us-east-1"}, skip_instance_cache=True, use_listings_cache=False)
        found = fs.find("bench/proj", detail=True)
        assert len(found) == len(keys)

    def rescan() -> None:
        with MediaIndexer(cat, cache_dir=work / "rescan-cache") as ix:
            s = ix.scan(url, probe=False)
        assert s.complete and s.unchanged == len(keys) and not (s.added or s.changed or s.missing), s.counts

    lst, scn = [], []
    for _ in range(repeat):  # interleaved, so both see the same server state
        lst.append(timed(listing))
        scn.append(timed(rescan))
    print(f"bare s3fs listing ({len(keys)} objects): best {min(lst):.3f} s  (runs {', '.join(f'{x:.3f}' for x in lst)})")
    print(f"mediaidx rescan, unchanged:            best {min(scn):.3f} s  (runs {', '.join(f'{x:.3f}' for x in scn)})")
    print(f"ratio rescan / listing: {min(scn) / min(lst):.2f}x  (target <= 1.5x)")


def remux_interleaved(src: Path, dst: Path) -> None:
    """Rewrite a MOV with its packets in decode-time order (no re-encoding)."""
    import av

    with av.open(str(src)) as i, av.open(str(dst), "w", format="mov") as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        packets = [p for p in i.demux() if p.dts is not None]
        packets.sort(key=lambda p: float(p.dts * p.time_base))
        for p in packets:
            p.stream = streams[p.stream.index]
            o.mux(p)


def bench_probe(endpoint: str, work: Path, clip_mb: int) -> None:
    from bridge.probe import probe_file
    from bridge.thumbs import make_thumbnail

    clip = work / "plate_A001C003.mov"
    # Intra-only video of grain with stereo AAC, about 40 Mbit/s (camera originals are 50-400): 720p MJPEG
    # frames of ~200 KB, remuxed so that audio and video are interleaved from the start as cameras write them
    # (the generator's muxer starts the audio megabytes late: find_stream_info would then read up to its
    # 5 MB probesize). An audio chunk after every frame is finer than cameras (every 0.5-1 s): the worst case
    # for the probe's audio windows.
    frames = max(24, clip_mb * 1024 * 1024 // 195_000)
    if not clip.exists() or clip.stat().st_size < clip_mb << 20:
        t = time.perf_counter()
        raw = work / "raw.mov"
        synth.make_video(raw, frames=frames, width=1280, height=720, fps=25, codec="mjpeg", pix_fmt="yuvj420p",
                         frame_fn=synth.noise(7), audio=synth.tone())
        remux_interleaved(raw, clip)
        raw.unlink()
        print(f"made a {clip.stat().st_size / 1e6:.0f} MB clip in {time.perf_counter() - t:.1f} s")
    size = clip.stat().st_size
    client = s3_client(endpoint)
    client.create_bucket(Bucket="plates")
    client.upload_file(str(clip), "plates", f"show/{clip.name}")
    storage = open_storage(f"s3+{endpoint}/plates/show")
    rel = clip.name.encode()
    t = time.perf_counter()
    with storage.open(rel) as fh:
        probe = probe_file(fh, name=clip.name)
    remote_s = time.perf_counter() - t
    local_s = timed(lambda: probe_file(clip))
    gets = [timed(lambda i=i: client.get_object(Bucket="plates", Key=f"show/{clip.name}",
                                                Range=f"bytes={i << 20}-{(i << 20) + 65535}")["Body"].read())
            for i in range(5)]
    dur = probe["format"].get("duration")
    print(f"clip: {size / 1e6:.1f} MB, {probe['kind']}, {dur} s, streams "
          f"{[s.get('codec') for s in probe['streams']]}")
    print(f"remote probe: {fh.bytes_fetched / 1e6:.2f} MB fetched in {fh.requests} ranged GETs = "
          f"{100 * fh.bytes_fetched / size:.2f}% of the file (target < 5%); {remote_s * 1000:.0f} ms "
          f"(local disk: {local_s * 1000:.0f} ms; one bare 64 KiB ranged GET on this server: "
          f"{sorted(gets)[2] * 1000:.0f} ms)")
    video = next(s for s in probe["streams"] if s.get("type") == "video")
    rotation = float(video.get("rotation") or 0)  # as the scan does: the probe's rotation, no second probe
    t = time.perf_counter()
    with storage.open(rel) as fh:
        make_thumbnail(fh, work / "thumb.jpg", kind="video", max_size=320, rotation=rotation)
    print(f"remote thumbnail: {fh.bytes_fetched / 1e6:.2f} MB fetched in {fh.requests} ranged GETs = "
          f"{100 * fh.bytes_fetched / size:.2f}% of the file; {(time.perf_counter() - t) * 1000:.0f} ms")
    # What a scan reads for a new clip: fingerprint, probe and thumbnail share one file and its cache.
    from bridge.scan.fingerprint import fingerprint_fileobj

    one = storage.one_file(rel, size)  # type: ignore[attr-defined]
    t = time.perf_counter()
    fingerprint_fileobj(one.open(rel), size)
    probe_file(one.open(rel), name=clip.name)
    make_thumbnail(one.open(rel), work / "thumb2.jpg", kind="video", max_size=320, rotation=rotation)
    f = one.file
    print(f"scan content work (fingerprint + probe + thumbnail): {f.bytes_fetched / 1e6:.2f} MB in {f.requests} "
          f"GETs = {100 * f.bytes_fetched / size:.2f}% of the file; {(time.perf_counter() - t) * 1000:.0f} ms")
    one.release()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--clip-mb", type=int, default=110)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None, help="keep generated files here (default: a temp dir)")
    args = ap.parse_args()
    os.environ.setdefault("MEDIAIDX_S3_ACCESS_KEY_ID", KEY)
    os.environ.setdefault("MEDIAIDX_S3_SECRET_ACCESS_KEY", SECRET)
    proc, endpoint = start_moto()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = args.work or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            print("== rescan of an unchanged bucket ==")
            bench_rescan(endpoint, work, args.objects, args.repeat)
            print("\n== probe of a remote clip by ranged reads ==")
            bench_probe(endpoint, work, args.clip_mb)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
