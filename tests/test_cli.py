"""The `mediaidx` command as a user runs it: JSON output, dry runs, one-line errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import synth

CLI = [sys.executable, "-m", "bridge.cli.app"]


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, input=input, timeout=120)


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "lib"
    (root / "reel1").mkdir(parents=True)
    synth.make_video(root / "reel1" / "take one.mov", frames=5, width=64, height=48, audio=synth.tone())
    synth.make_video(root / "reel1" / "take two.mp4", frames=5, width=64, height=48)
    synth.make_image(root / "still.jpg", width=64, height=48)
    return root


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    return tmp_path / "catalog.sqlite"


def test_scan_json_is_one_object_and_quiet(lib: Path, cat: Path) -> None:
    r = run("--catalog", str(cat), "scan", str(lib), "--json", "--thumbs")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    s = json.loads(r.stdout)
    assert {k: s[k] for k in ("added", "changed", "moved", "missing", "unchanged", "failed")} == {
        "added": 3, "changed": 0, "moved": 0, "missing": 0, "unchanged": 0, "failed": 0}
    again = json.loads(run("--catalog", str(cat), "scan", str(lib), "--json").stdout)
    assert again["unchanged"] == 3 and again["added"] == 0


def test_dry_run_scan_prints_the_plan_and_creates_nothing(lib: Path, cat: Path, tmp_path: Path) -> None:
    r = run("--catalog", str(cat), "--cache-dir", str(tmp_path / "cache"), "scan", str(lib), "--dry-run", "--json",
            "--thumbs")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["plan"]
    assert sorted(Path(p["path"]).name for p in plan if p["action"] == "add") == ["still.jpg", "take one.mov",
                                                                               "take two.mp4"]
    assert len([p for p in plan if p["action"] == "write"]) == 3
    assert not cat.exists() and not (tmp_path / "cache").exists()
    text = run("--catalog", str(cat), "scan", str(lib), "--dry-run")
    assert "take one.mov" in text.stdout and "add" in text.stdout and not cat.exists()


def test_queries_in_json(lib: Path, cat: Path) -> None:
    run("--catalog", str(cat), "scan", str(lib))
    found = json.loads(run("--catalog", str(cat), "search", "take", "--json", "--has-audio").stdout)
    assert found["total"] == 1 and found["results"][0]["name"] == "take one.mov"
    videos = json.loads(run("--catalog", str(cat), "search", "--kind", "video", "--json").stdout)
    assert videos["total"] == 2
    recent = json.loads(run("--catalog", str(cat), "recent", "-n", "2", "--json").stdout)
    assert len(recent["results"]) == 2
    stats = json.loads(run("--catalog", str(cat), "stats", "--json").stdout)
    assert stats["by_kind"] == {"video": 2, "image": 1}
    asset_id = found["results"][0]["id"]
    shown = json.loads(run("--catalog", str(cat), "show", str(asset_id), "--json").stdout)
    assert shown["probe"]["streams"][0]["codec"] == "h264" and shown["fps"] == "25/1"
    by_path = json.loads(run("--catalog", str(cat), "show", str(lib / "reel1" / "take one.mov"), "--json").stdout)
    assert by_path["id"] == asset_id
    human = run("--catalog", str(cat), "show", str(asset_id))
    assert "take one.mov" in human.stdout and "h264" in human.stdout


def test_user_metadata_commands_and_their_dry_runs(lib: Path, cat: Path) -> None:
    run("--catalog", str(cat), "scan", str(lib), "--no-probe")
    before = cat.read_bytes()
    for args in (("tag", "1", "hero", "--dry-run"), ("rate", "1", "4", "--dry-run"),
                 ("note", "1", "best take", "--dry-run")):
        r = run("--catalog", str(cat), *args, "--json")
        assert r.returncode == 0, r.stderr
        result = json.loads(r.stdout)
        assert result["dry_run"] and len(result["plan"]) == 1
    assert cat.read_bytes() == before
    assert run("--catalog", str(cat), "tag", "1", "hero", "b-roll").returncode == 0
    assert run("--catalog", str(cat), "rate", "1", "4").returncode == 0
    assert run("--catalog", str(cat), "note", "1", "-", input="best take\n").returncode == 0
    a = json.loads(run("--catalog", str(cat), "show", "1", "--json").stdout)
    assert (a["tags"], a["rating"], a["note"]) == (["b-roll", "hero"], 4, "best take")
    assert json.loads(run("--catalog", str(cat), "tag", "1", "hero", "--remove", "--json").stdout)["plan"][0][
        "action"] == "untag"
    assert json.loads(run("--catalog", str(cat), "rate", "1", "clear", "--json").stdout)["plan"][0]["reason"] == (
        "4 -> none")


def test_errors_are_one_line_with_exit_codes(lib: Path, cat: Path, tmp_path: Path) -> None:
    cases = [
        (("scan", str(tmp_path / "nowhere")), 1, "no such folder"),
        (("show", "999"), 1, "no asset with id 999"),
        (("rate", "1", "9"), 2, "rating must be 0 to 5"),
        (("probe", str(tmp_path / "missing.mov")), 1, "missing.mov"),
        (("search", "--resolution", "huge"), 2, "unknown resolution"),
    ]
    run("--catalog", str(cat), "scan", str(lib), "--no-probe")
    for args, code, text in cases:
        r = run("--catalog", str(cat), *args)
        assert r.returncode == code, (args, r.stderr)
        assert text in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    bad = run("--catalog", str(cat), "scan", "--no-such-option")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    (tmp_path / "junk.mp4").write_text("not a video")
    r = run("probe", str(tmp_path / "junk.mp4"))
    assert r.returncode == 1 and "not a media file" in r.stderr and "Traceback" not in r.stderr
    assert str(tmp_path / "junk.mp4") in r.stderr  # which file, when a script probes many
    r = run("probe", str(tmp_path))
    assert r.returncode == 1 and f"{tmp_path}: not a regular file" in r.stderr
    (tmp_path / "latin1.json").write_bytes(b'{"action": "stats", "name": "caf\xe9"}')
    r = run("--catalog", str(cat), "run", str(tmp_path / "latin1.json"))
    assert r.returncode == 2 and "not UTF-8" in r.stderr and "Traceback" not in r.stderr
    r = run("--catalog", str(cat), "search", "--from", "2024-13-01")
    assert r.returncode == 2 and "no such day" in r.stderr


def test_probe_json(lib: Path) -> None:
    r = run("probe", str(lib / "reel1" / "take one.mov"), "--json")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert p["has_audio"] is True and p["streams"][0]["frame_rate"] == "25/1"


def test_catalog_from_environment_and_per_user_default(lib: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MEDIAIDX_CATALOG": str(tmp_path / "env.sqlite")}
    assert run("scan", str(lib), "--no-probe", env=env).returncode == 0
    assert (tmp_path / "env.sqlite").exists()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAIDX_", "XDG_"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"))
    assert run("scan", str(lib), "--no-probe", "--thumbs", env=env).returncode == 0
    assert (home / "data" / "mediaidx" / "catalog.sqlite").exists()
    assert any((home / "cache" / "mediaidx" / "thumbs").rglob("*.jpg"))


def test_prune_dry_run_then_prune(lib: Path, cat: Path, tmp_path: Path) -> None:
    root = tmp_path / "lib2"
    root.mkdir()
    synth.make_image(root / "a.jpg", width=32, height=32)
    synth.make_image(root / "b.jpg", width=40, height=32)
    run("--catalog", str(cat), "scan", str(root), "--thumbs")
    (root / "b.jpg").unlink()
    run("--catalog", str(cat), "scan", str(root), "--thumbs")
    before = cat.read_bytes()
    dry = json.loads(run("--catalog", str(cat), "prune", "--dry-run", "--json").stdout)
    actions = sorted(p["action"] for p in dry["plan"])
    assert actions == ["delete", "remove"]  # the asset row and its now unused thumbnail
    assert cat.read_bytes() == before
    done = json.loads(run("--catalog", str(cat), "prune", "--json").stdout)
    assert [p["action"] for p in done["plan"]].count("delete") == 1
    removed = [p["path"] for p in done["plan"] if p["action"] == "remove"]
    assert removed and not Path(removed[0]).exists()
    assert json.loads(run("--catalog", str(cat), "search", "--status", "missing", "--json").stdout)["total"] == 0
