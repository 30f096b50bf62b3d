"""Scans survive bad input and bad luck: killed processes, unreadable folders, vanishing and broken files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bridge import MediaIndexer, synth
from bridge.scan import ScanEvent

CLI = [sys.executable, "-m", "bridge.cli.app"]


def clip_copies(folder: Path, n: int, per_folder: int = 100) -> int:
    """n small, distinct, probe-able clips (one encode, then copies with distinct trailing bytes)."""
    src = folder / "_src.mp4"
    folder.mkdir(parents=True, exist_ok=True)
    synth.make_video(src, frames=4, width=32, height=32)
    data = src.read_bytes()
    src.unlink()
    for i in range(n):
        sub = folder / f"reel{i // per_folder:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"clip_{i:04d}.mp4").write_bytes(data + i.to_bytes(4, "big") * (i + 1))
    return n


def count_assets(catalog: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM assets").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_scan_killed_half_way_leaves_a_sound_catalog_and_the_next_scan_finishes(tmp_path: Path) -> None:
    total = clip_copies(tmp_path / "lib", 2000)
    catalog = tmp_path / "cat.sqlite"
    proc = subprocess.Popen([*CLI, "--catalog", str(catalog), "scan", str(tmp_path / "lib"), "--jobs", "1",
                             "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while count_assets(catalog) < 40:
        assert proc.poll() is None, f"scan ended before it could be killed: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    indexed = count_assets(catalog)
    assert 40 <= indexed < total, "the kill must land half way"

    conn = sqlite3.connect(catalog)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("SELECT status FROM scans").fetchall() == [("running",)]
    # Rows written are whole: probed, fingerprinted, searchable.
    assert conn.execute("SELECT count(*) FROM assets WHERE status != 'ok' OR fingerprint IS NULL").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM asset_fts").fetchone()[0] == indexed
    conn.close()

    done = subprocess.run([*CLI, "--catalog", str(catalog), "scan", str(tmp_path / "lib"), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["added"] == total - indexed and summary["unchanged"] == indexed and summary["failed"] == 0
    conn = sqlite3.connect(catalog)
    assert conn.execute("SELECT count(*), count(DISTINCT folder_id || '/' || hex(name)) FROM assets").fetchone() == (
        total, total)
    assert conn.execute("SELECT count(*) FROM asset_fts").fetchone()[0] == total
    assert [s for (s,) in conn.execute("SELECT status FROM scans ORDER BY id")] == ["interrupted", "done"]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_broken_files_are_recorded_with_reasons_and_the_scan_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    good = synth.make_video(root / "good.mp4", frames=5, width=64, height=48, audio=synth.tone())
    (root / "empty.mov").write_bytes(b"")
    (root / "readme.mp4").write_text("This is a text file someone named .mp4\n" * 20)
    (root / "noise.mov").write_bytes(os.urandom(20000))
    data = good.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(500))
    synth.make_image(root / "fine.jpg", width=64, height=48)
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(root, thumbs=True)
        reasons = {Path(i.path).name: i.reason for i in s.issues}
        assert (s.added, s.failed) == (2, 5), reasons
        assert reasons["empty.mov"] == "empty file (0 bytes)"
        assert "not a media file" in reasons["readme.mp4"]
        for name in ("noise.mov", "truncated.mp4", "broken.jpg"):
            assert reasons[name] and "\n" not in reasons[name]
        failed = {a.name: a for a in ix.search(status="failed")}
        assert set(failed) == {"empty.mov", "readme.mp4", "noise.mov", "truncated.mp4", "broken.jpg"}
        assert all(a.error for a in failed.values())
        ok = {a.name: a for a in ix.search(status="ok")}
        assert set(ok) == {"good.mp4", "fine.jpg"}
        assert ok["good.mp4"].has_audio and ok["good.mp4"].thumb and Path(ok["good.mp4"].thumb).is_file()
        # A failed file is not retried on every scan, only when it changes or on request.
        assert ix.scan(root).counts["unchanged"] == 7
        again = ix.scan(root, retry_failed=True)
        assert again.failed == 5 and again.changed == 0


def test_file_vanishing_during_the_scan(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    for folder in ("a", "b"):
        for i in range(3):
            (root / folder).mkdir(parents=True, exist_ok=True)
            synth.make_video(root / folder / f"{folder}{i}.mp4", frames=3, width=32, height=32)
    doomed = root / "b" / "b1.mp4"

    def on_progress(ev: ScanEvent) -> None:  # listed, not yet read: delete it now
        if ev.phase == "walk" and ev.path.endswith("/b") and doomed.exists():
            doomed.unlink()

    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        s = ix.scan(root, jobs=1, progress=on_progress)
        assert s.complete and s.added == 5 and s.failed == 0
        assert sorted(a.name for a in ix.search(limit=10)) == ["a0.mp4", "a1.mp4", "a2.mp4", "b0.mp4", "b2.mp4"]
        # A catalogued file that changes and then vanishes before it is re-read is marked missing.
        victim = root / "a" / "a1.mp4"
        victim.write_bytes(victim.read_bytes() + b"\0")

        def vanish(ev: ScanEvent) -> None:
            if ev.phase == "walk" and ev.path.endswith("/a") and victim.exists():
                victim.unlink()

        s = ix.scan(root, jobs=1, progress=vanish)
        assert s.complete and s.missing == 1
        assert [a.name for a in ix.search(status="missing")] == ["a1.mp4"]


def test_cancel_keeps_what_was_done_and_marks_nothing_missing(tmp_path: Path) -> None:
    clip_copies(tmp_path / "lib", 60, per_folder=10)
    cancel = threading.Event()
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as ix:
        first = ix.scan(tmp_path / "lib", jobs=1)
        assert first.added == 60
        shutil.rmtree(tmp_path / "lib" / "reel05")  # would be 10 missing files
        for p in (tmp_path / "lib").rglob("*.mp4"):
            p.write_bytes(p.read_bytes() + b"!")  # everything changed: lots of work to cancel

        def stop_soon(ev: ScanEvent) -> None:
            if ev.work_done >= 5:
                cancel.set()

        s = ix.scan(tmp_path / "lib", jobs=1, progress=stop_soon, cancel=cancel)
        assert not s.complete and s.missing == 0
        assert ix.count(status="missing") == 0
        rest = ix.scan(tmp_path / "lib", jobs=1)
        assert rest.complete and rest.missing == 10
        assert rest.changed + s.changed == 50


def _without_root_powers() -> list[str] | None:
    """A command prefix under which file permissions apply to us (root reads everything otherwise)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    return None


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unreadable_folder_is_reported_and_its_files_kept(tmp_path: Path) -> None:
    prefix = _without_root_powers()
    if prefix is None:
        pytest.skip("running as root without setpriv (util-linux): cannot make a folder unreadable to us")
    root = tmp_path / "lib"
    for folder in ("open", "locked"):
        (root / folder).mkdir(parents=True)
        synth.make_video(root / folder / f"{folder}.mp4", frames=3, width=32, height=32)
    secret = synth.make_video(root / "open" / "secret.mp4", frames=3, width=32, height=32)
    cmd = [*prefix, *CLI, "--catalog", str(tmp_path / "c.sqlite"), "scan", str(root), "--json"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == 3
    (root / "locked").chmod(0o000)
    secret.chmod(0o000)
    secret.touch()
    try:
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        (root / "locked").chmod(0o755)
    assert second.returncode == 0, second.stderr
    s = json.loads(second.stdout)
    issues = {Path(i["path"]).name: i["reason"] for i in s["issues"]}
    assert issues["locked"] == "folder not read: permission denied"
    assert "ermission denied" in issues["secret.mp4"]
    assert s["missing"] == 0 and s["failed"] == 1
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    statuses = dict(conn.execute("SELECT CAST(name AS TEXT), status FROM assets"))
    assert statuses == {"locked.mp4": "ok", "open.mp4": "ok", "secret.mp4": "failed"}


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if text.encode() in cmd and state != "Z":
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc to list processes")
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_killed_scan_leaves_no_workers_and_no_lock(tmp_path: Path, jobs: int) -> None:
    """Walker and probe workers die with a killed scan; the scan lock they inherited is free at once."""
    clip_copies(tmp_path / "lib", 1500)
    catalog = tmp_path / "cat.sqlite"
    proc = subprocess.Popen([*CLI, "--catalog", str(catalog), "scan", str(tmp_path / "lib"), "--jobs", str(jobs)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while count_assets(catalog) < 20:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while left := _processes_mentioning(str(catalog)):
        assert time.monotonic() < deadline, f"workers outlived the killed scan: {left}"
        time.sleep(0.05)
    from bridge.scan.lock import ScanLock

    with ScanLock(catalog):  # raises "another scan is running" while anything holds the lock
        pass
