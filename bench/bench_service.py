#!/usr/bin/env python3
"""Bridge service speed, each against its anchor in the same run.

1. Streaming a 1 GB file to a client over loopback against `cat FILE > /dev/null` on the same warm file,
   interleaved, best of N: over the same-host data channel (Unix socket and loopback TCP) and over ZeroMQ
   frames (credit-based), each with a consumer that verifies the hash and drops the bytes, and through
   `BridgeClient.fetch` (written to `<dest>.part`, verified, renamed).
2. Search round trip (client request -> bridge -> SQLite FTS + filters -> reply) on a 100,000-asset catalog:
   median and 90th percentile over 300 calls.

    .venv/bin/python bench/bench_service.py [--size-mb 1024] [--assets 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from blender_mediaidx.core.client import BridgeClient  # noqa: E402
from bridge import MediaIndexer  # noqa: E402


def start_bridge(catalog: Path, cache: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "bridge.cli.app", "--catalog", str(catalog), "--cache-dir",
                             str(cache), "serve", "--bind", "tcp://127.0.0.1:*"], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)
    line = proc.stdout.readline()
    return proc, line.split("listening on ", 1)[1].split()[0]


def client(endpoint: str) -> BridgeClient:
    c = BridgeClient(endpoint, name="bench", heartbeat_s=1.0).start()
    assert c.wait(lambda: c.state == "connected", 10)
    return c


def bench_stream(work: Path, size_mb: int, repeat: int) -> None:
    root = work / "stream"
    root.mkdir(exist_ok=True)
    big = root / "plate_1g.mov"
    if not big.exists() or big.stat().st_size != size_mb << 20:
        with open(big, "wb") as fh:
            for _ in range(size_mb):
                fh.write(os.urandom(1 << 20))
    cat = work / "stream.sqlite"
    with MediaIndexer(cat, cache_dir=work / "stream-cache") as ix:
        ix.scan(root, probe=False)
        asset = ix.search(limit=1)[0].id
    subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)  # warm

    def cat_once() -> float:
        return _timed(lambda: subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True))

    proc, endpoint = start_bridge(cat, work / "stream-cache")
    dest_dir = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
    runs: dict[str, list[float]] = {}
    cases: dict[str, object] = {
        "cat FILE > /dev/null": cat_once,
        "data channel (unix), verified and discarded": lambda: _discard_channel(endpoint, asset, "unix"),
        "data channel (tcp), verified and discarded": lambda: _discard_channel(endpoint, asset, "tcp"),
        "frames, verified and discarded": lambda: _stream_discard(endpoint, asset),
        f"cp FILE {dest_dir} (the anchor for writing the file)": lambda: _cp(big, dest_dir),
        f"BridgeClient.fetch, data channel (unix), to {dest_dir}": lambda: _fetch(endpoint, asset, dest_dir, "auto"),
        f"BridgeClient.fetch, frames, to {dest_dir}": lambda: _fetch(endpoint, asset, dest_dir, "frames"),
    }
    try:
        for _ in range(repeat):  # interleaved, so every case sees the same machine
            for name, fn in cases.items():
                runs.setdefault(name, []).append(fn())  # type: ignore[operator]
    finally:
        proc.terminate()
        proc.wait()
    mb = size_mb * 1.048576
    cat_s = min(runs["cat FILE > /dev/null"])
    print(f"streaming {size_mb} MiB, best of {repeat} (interleaved):")
    for name, times in runs.items():
        best = min(times)
        med = statistics.median(times)
        print(f"  {name:62s} {best:6.3f} s {mb / best:7.0f} MB/s = {cat_s / best * 100:5.1f}% of cat "
              f"(median {med:.3f} s = {statistics.median(runs['cat FILE > /dev/null']) / med * 100:.0f}% of cat's)")


def _cp(big: Path, dest_dir: Path) -> float:
    dest = dest_dir / f"mediaidx-bench-cp-{os.getpid()}.mov"
    try:
        return _timed(lambda: subprocess.run(["cp", str(big), str(dest)], check=True))
    finally:
        dest.unlink(missing_ok=True)


def _fetch(endpoint: str, asset: int, dest_dir: Path, channel: str) -> float:
    """`BridgeClient.fetch`: written to `<dest>.part`, hashed, verified, renamed."""
    c = BridgeClient(endpoint, name="bench", heartbeat_s=1.0, data_channel=channel).start()
    assert c.wait(lambda: c.state == "connected", 10)
    dest = dest_dir / f"mediaidx-bench-{os.getpid()}.mov"
    try:
        t0 = time.perf_counter()
        t = c.fetch(dest, asset=asset, chunk_size=4 << 20, window=16)
        assert c.wait(lambda: t.finished, 600) and t.done, t.error
        elapsed = time.perf_counter() - t0
        assert t.channel == ("frames" if channel == "frames" else "unix")
    finally:
        c.stop()
        dest.unlink(missing_ok=True)
    return elapsed


def _discard_channel(endpoint: str, asset: int, kind: str) -> float:
    """The data channel with a consumer that verifies the hash and drops the bytes (the `> /dev/null`)."""
    import socket

    import xxhash
    import zmq

    from blender_mediaidx.core import protocol as P

    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    t0 = time.perf_counter()
    sock.send(P.encode(P.request("fetch", {"asset": asset, "channels": [kind]})))
    reply = P.decode(sock.recv())
    ch, size = reply["result"]["channel"], reply["result"]["size"]
    data = socket.socket(socket.AF_UNIX if kind == "unix" else socket.AF_INET)
    data.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # as BridgeClient does
    data.connect(ch["address"] if kind == "unix" else tuple(ch["address"]))
    data.sendall(ch["ticket"])
    buf = memoryview(bytearray(1 << 20))
    h = xxhash.xxh3_128()
    got = 0
    while got < size and (n := data.recv_into(buf)):
        h.update(buf[:n])
        got += n
    data.close()
    done = P.decode(sock.recv())
    assert done.get("event") == "fetch.done" and done["data"]["hash"] == h.hexdigest() and got == size, done
    elapsed = time.perf_counter() - t0
    sock.close(0)
    return elapsed


def _stream_discard(endpoint: str, asset: int) -> float:
    """The fetch protocol with a consumer that verifies the hash and drops the bytes (the `> /dev/null`)."""
    import xxhash
    import zmq

    from blender_mediaidx.core import protocol as P

    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    t0 = time.perf_counter()
    sock.send(P.encode(P.request("fetch", {"asset": asset, "chunk": 4 << 20, "window": 16})))
    h = xxhash.xxh3_128()
    got = 0
    while True:
        frames = sock.recv_multipart(copy=False)
        msg = P.decode(frames[0].bytes)
        if msg.get("event") == "fetch.chunk":
            h.update(frames[1].buffer)
            got += 1
            if got % 8 == 0:
                sock.send(P.encode(P.request("credit", {"transfer": msg["data"]["transfer"], "n": 8})))
        elif msg.get("event") == "fetch.done":
            assert msg["data"]["hash"] == h.hexdigest()
            break
        elif msg.get("ok") is False:
            raise RuntimeError(msg)
    elapsed = time.perf_counter() - t0
    sock.close(0)
    return elapsed


def bench_search(work: Path, assets: int) -> None:
    root = work / f"catalog-{assets}"
    cat = work / f"search-{assets}.sqlite"
    if not cat.exists():
        for i in range(assets):
            d = root / f"day{i // 5000:02d}" / f"roll{(i // 100) % 50:02d}"
            if i % 100 == 0:
                d.mkdir(parents=True, exist_ok=True)
            (d / f"A{i // 1000:03d}_C{i % 1000:03d}_harbour.mov").write_bytes(b"\0" * (1 + i % 977))
        with MediaIndexer(cat, cache_dir=work / "search-cache") as ix:
            ix.scan(root, probe=False)
    proc, endpoint = start_bridge(cat, work / "search-cache")
    try:
        c = client(endpoint)
        queries = [{"query": "A042"}, {"query": "harbour", "filters": {"kind": "video"}}, {"query": "C123 roll12"},
                   {"filters": {"kind": "video"}, "limit": 50}]
        for q in queries:  # warm
            c.call("search", q)
        lat = []
        for i in range(300):
            t0 = time.perf_counter()
            c.call("search", {**queries[i % len(queries)], "limit": 50})
            lat.append((time.perf_counter() - t0) * 1000)
        c.stop()
    finally:
        proc.terminate()
        proc.wait()
    lat.sort()
    print(f"search round trip on {assets} assets: median {statistics.median(lat):.2f} ms, "
          f"p90 {lat[int(len(lat) * 0.9)]:.2f} ms, max {lat[-1]:.2f} ms (page of 50, total count included)")


def _timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--assets", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "mediaidx-bench-service")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    bench_stream(args.dir, args.size_mb, args.repeat)
    bench_search(args.dir, args.assets)


if __name__ == "__main__":
    main()
