"""JSON workflows: validated before anything runs, then scan, backup, sync_album and stats in order."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import MediaIndexer, synth
from bridge.errors import WorkflowError

CLI = [sys.executable, "-m", "bridge.cli.app"]


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    root = tmp_path / "footage"
    (root / "day1").mkdir(parents=True)
    synth.make_video(root / "day1" / "A001.mov", frames=5, width=64, height=48, audio=synth.tone(),
                     metadata={"creation_time": "2024-05-06T07:30:00.000000Z"})
    synth.make_image(root / "day1" / "still.jpg", width=64, height=48, exif_ifd={0x9003: "2024:05:06 08:00:00"})
    return root


@pytest.fixture
def ix(tmp_path: Path) -> MediaIndexer:
    with MediaIndexer(tmp_path / "cat.sqlite", cache_dir=tmp_path / "cache") as indexer:
        yield indexer


@pytest.mark.parametrize(("spec", "message"), [
    ({"workflow": [{"action": "scan", "root": "/x"}, {"action": "backup"}]}, "step 2 (backup): missing field 'backup_root'"),
    ({"workflow": [{"action": "scan", "root": "/x"}, {"action": "transcode"}]}, "step 2: unknown action 'transcode'"),
    ({"action": "scan"}, "step 1 (scan): missing field 'root'"),
    ({"action": "scan", "root": 3}, "step 1 (scan): field 'root' must be"),
    ({"action": "scan", "root": "/x", "prob": False}, "step 1 (scan): unknown field 'prob'"),
    ({"workflow": [{"root": "/x"}]}, "step 1: missing field 'action'"),
    ({"workflow": []}, "workflow: no steps"),
    ({"workflow": [{"action": "sync_album", "root": "/a", "category": "c"}]}, "give either 'source'"),
    # an empty selection was read as none at all: the album took the whole library
    ({"action": "sync_album", "root": "/a", "category": "c", "assets": []},
     "step 1 (sync_album): field 'assets' must be a non-empty list"),
    ({"action": "sync_album", "root": "/a", "category": "c", "assets": [1], "kind": "image"},
     "the filters kind would be ignored"),
    ("scan everything", "expected a step object"),
])
def test_invalid_workflows_are_refused_naming_step_and_field(ix: MediaIndexer, spec: object, message: str) -> None:
    with pytest.raises(WorkflowError) as err:
        ix.run_workflow(spec)
    assert message in str(err.value)


def test_nothing_runs_when_a_later_step_is_invalid(ix: MediaIndexer, lib: Path, tmp_path: Path) -> None:
    spec = {"workflow": [{"action": "scan", "root": str(lib)},
                         {"action": "backup", "backup_root": str(tmp_path / "bk"), "create_root": True},
                         {"action": "stats", "colour": "red"}]}
    with pytest.raises(WorkflowError, match="step 3 \\(stats\\): unknown field 'colour'"):
        ix.run_workflow(spec)
    assert not (tmp_path / "cat.sqlite").exists() and not (tmp_path / "bk").exists()


def test_scan_backup_album_stats_in_one_workflow(ix: MediaIndexer, lib: Path, tmp_path: Path) -> None:
    phone = tmp_path / "phone"
    phone.mkdir()
    synth.make_image(phone / "IMG_1.jpg", width=32, height=32, exif_ifd={0x9003: "2024:07:01 10:00:00"})
    spec = {"workflow": [
        {"action": "scan", "root": str(lib), "thumbs": True},
        {"action": "backup", "backup_root": str(tmp_path / "backup"), "create_root": True},
        {"action": "sync_album", "source": str(phone), "root": str(tmp_path / "photos"), "category": "Summer"},
        {"action": "stats", "name": "totals"},
    ]}
    results = ix.run_workflow(spec)
    assert [r["status"] for r in results] == ["ok"] * 4, results
    assert results[0]["result"]["added"] == 2
    assert results[1]["result"]["copied"] == 2
    for rel in ("day1/A001.mov", "day1/still.jpg"):
        assert sha(tmp_path / "backup" / "footage" / rel) == sha(lib / rel)
    assert (tmp_path / "photos" / "Summer" / "2024-07-01_100000.jpg").is_file()
    assert results[3]["name"] == "totals" and results[3]["result"]["present"] == 2
    again = ix.run_workflow(spec)
    assert again[0]["result"]["unchanged"] == 2
    assert again[1]["result"]["copied"] == 0 and again[1]["result"]["skipped"] == 2
    assert again[2]["result"]["placed"] == 0 and again[2]["result"]["skipped"] == 1


def test_a_failed_step_stops_the_rest_unless_told_otherwise(ix: MediaIndexer, lib: Path, tmp_path: Path) -> None:
    spec = {"workflow": [{"action": "scan", "root": str(tmp_path / "unmounted")}, {"action": "stats"}]}
    results = ix.run_workflow(spec)
    assert [r["status"] for r in results] == ["failed", "skipped"]
    assert "no such folder" in results[0]["error"]
    results = ix.run_workflow({**spec, "continue_on_error": True})
    assert [r["status"] for r in results] == ["failed", "ok"]


def test_dry_run_workflow_changes_nothing(ix: MediaIndexer, lib: Path, tmp_path: Path) -> None:
    ix.scan(lib)
    ix.close()
    before = (tmp_path / "cat.sqlite").read_bytes()
    spec = {"workflow": [{"action": "scan", "root": str(lib), "thumbs": True},
                         {"action": "backup", "backup_root": str(tmp_path / "backup"), "create_root": True}]}
    results = ix.run_workflow(spec, dry_run=True)
    ix.close()
    assert all(r["status"] == "ok" and r["dry_run"] for r in results)
    assert sorted(Path(p["path"]).name for p in results[1]["result"]["plan"] if p["action"] == "copy") == [
        "A001.mov", "still.jpg"]
    assert not (tmp_path / "backup").exists()
    assert not (tmp_path / "cache").exists()
    assert (tmp_path / "cat.sqlite").read_bytes() == before


def test_cli_run_exit_codes_and_json(lib: Path, tmp_path: Path) -> None:
    cat = str(tmp_path / "cli.sqlite")
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"workflow": [{"action": "scan", "root": str(lib)}, {"action": "stats"}]}))
    r = subprocess.run([*CLI, "--catalog", cat, "run", str(good), "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [s["status"] for s in out["steps"]] == ["ok", "ok"] and out["steps"][0]["result"]["added"] == 2
    single = tmp_path / "single.json"
    single.write_text(json.dumps({"action": "stats"}))
    assert subprocess.run([*CLI, "--catalog", cat, "run", str(single)], capture_output=True,
                          timeout=120).returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"workflow": [{"action": "stats"}, {"action": "backup"}]}))
    r = subprocess.run([*CLI, "--catalog", cat, "run", str(bad)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "step 2 (backup): missing field 'backup_root'" in r.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"workflow": [')
    r = subprocess.run([*CLI, "--catalog", cat, "run", str(broken)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not valid JSON" in r.stderr and "Traceback" not in r.stderr
    failing = tmp_path / "failing.json"
    failing.write_text(json.dumps({"action": "scan", "root": str(tmp_path / "gone")}))
    r = subprocess.run([*CLI, "--catalog", cat, "run", str(failing)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "no such folder" in r.stderr


def test_a_problem_after_200_plan_lines_is_printed_not_hidden(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI shows 200 plan lines then '... N more': a backup that stopped on a full disk put its one fail
    line last, so the reason it stopped was hidden (and not_attempted missing from the summary)."""
    from bridge.workflow.report import print_results

    plan = [{"action": "copy", "path": f"/bk/r/{i}.jpg", "id": i} for i in range(300)]
    plan.append({"action": "fail", "path": "/bk", "reason": "backup stopped: the backup disk is full (5 file(s) "
                                                            "not attempted)"})
    print_results([{"step": 1, "action": "backup", "status": "failed",
                    "result": {"plan": plan, "copied": 300, "failed": 1, "not_attempted": 5}}], dry_run=False)
    out = " ".join(capsys.readouterr().out.split())
    assert "backup stopped: the backup disk is full" in out
    assert "... 100 more" in out and "not_attempted 5" in out
