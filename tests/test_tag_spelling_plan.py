"""A tag plan names the spelling the catalog keeps.

Tags are case-insensitive in any script and the first spelling stored wins: `mediaidx tag 2 ÉTÉ` when `été`
is on another asset stores `été`. The dry run showed `ÉTÉ`, so it did not show what the real run would do.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import MediaIndexer, synth

CLI = [sys.executable, "-m", "bridge.cli.app"]


def cli(cat: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--catalog", str(cat), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def cat(tmp_path: Path) -> tuple[Path, list[int]]:
    """A catalog of three stills; asset 1 is tagged `été` and `Hero`."""
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        synth.make_image(lib / name, width=32, height=24)
    cat = tmp_path / "catalog.sqlite"
    with MediaIndexer(cat, cache_dir=tmp_path / "cache") as ix:
        ix.scan(lib)
        ids = sorted(a.id for a in ix.search(limit=10))
        ix.tag(ids[0], ["été", "Hero"])
    return cat, ids


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tags(ix: MediaIndexer, asset_id: int) -> list[str]:
    return ix.get(asset_id).tags


def test_the_plan_names_the_stored_spelling_python_api(cat) -> None:
    path, (first, second, _third) = cat
    with MediaIndexer(path) as ix:
        before = _digest(path)
        dry = ix.tag(second, ["ÉTÉ", "hero", "New  one"], dry_run=True)
        assert [(p.action, p.reason) for p in dry.plan] == [("tag", "été"), ("tag", "Hero"), ("tag", "New one")]
        assert _digest(path) == before and _tags(ix, second) == []

        real = ix.tag(second, ["ÉTÉ", "hero", "New  one"])
        assert [p.reason for p in real.plan] == [p.reason for p in dry.plan]  # the dry run showed exactly this
        assert _tags(ix, second) == ["Hero", "New one", "été"]

        # a tag the asset already has in another case is no change, in the plan as in the catalog
        assert ix.tag(second, ["ÉTÉ", "NEW ONE"], dry_run=True).plan == []
        assert ix.tag(second, ["ÉTÉ", "NEW ONE"]).plan == []
        assert _tags(ix, second) == ["Hero", "New one", "été"]

        # removing in another case names the asset's own spelling, dry or not
        assert [p.reason for p in ix.tag(second, ["HERO"], remove=True, dry_run=True).plan] == ["Hero"]
        assert [p.reason for p in ix.tag(second, ["HERO"], remove=True).plan] == ["Hero"]
        assert _tags(ix, second) == ["New one", "été"] and _tags(ix, first) == ["Hero", "été"]


def test_the_cli_dry_run_shows_what_the_real_run_stores(cat) -> None:
    path, (_first, second, _third) = cat
    before = _digest(path)
    dry = cli(path, "tag", str(second), "ÉTÉ", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "été" in dry.stdout and "ÉTÉ" not in dry.stdout
    dry_json = cli(path, "tag", str(second), "ÉTÉ", "--dry-run", "--json")
    assert [p["reason"] for p in json.loads(dry_json.stdout)["plan"]] == ["été"]
    assert _digest(path) == before

    real = cli(path, "tag", str(second), "ÉTÉ", "--json")
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["plan"] == json.loads(dry_json.stdout)["plan"]
    shown = cli(path, "show", str(second), "--json")
    assert json.loads(shown.stdout)["tags"] == ["été"]

    again = cli(path, "tag", str(second), "Été", "--dry-run")  # already there in another case: nothing to do
    assert again.returncode == 0 and "nothing" in again.stdout and "Été" not in again.stdout


def test_the_web_api_plan_names_the_stored_spelling(cat, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from bridge.web import WebContext, create_app

    path, (_first, second, _third) = cat
    with TestClient(create_app(WebContext(path, tmp_path / "cache")), base_url="http://127.0.0.1:8765") as c:
        dry = c.post(f"/api/assets/{second}/tags", json={"add": ["ÉTÉ"], "dry_run": True}).json()
        real = c.post(f"/api/assets/{second}/tags", json={"add": ["ÉTÉ"]}).json()
        assert [p["reason"] for p in dry["plan"]] == [p["reason"] for p in real["plan"]] == ["été"]
        assert real["asset"]["tags"] == ["été"]
        c.app.state.ctx.jobs.close()


def test_the_web_api_checks_both_lists_before_writing_either(cat, tmp_path: Path) -> None:
    """A bad tag in `remove` answered 400 after `add` had been written; a tag in both lists was planned as
    added by the dry run and added then removed by the real run."""
    from fastapi.testclient import TestClient

    from bridge.web import WebContext, create_app

    path, (first, second, _third) = cat
    before = _digest(path)
    with TestClient(create_app(WebContext(path, tmp_path / "cache")), base_url="http://127.0.0.1:8765") as c:
        bad = c.post(f"/api/assets/{second}/tags", json={"add": ["y"], "remove": ["x" * 101]})
        assert bad.status_code == 400 and "too long" in bad.json()["error"]["message"]
        both = c.post(f"/api/assets/{first}/tags", json={"add": ["Night"], "remove": ["NIGHT"], "dry_run": True})
        assert both.status_code == 400 and "added and removed" in both.json()["error"]["message"]
        c.app.state.ctx.jobs.close()
    assert _digest(path) == before  # nothing written
    with MediaIndexer(path, cache_dir=tmp_path / "cache") as ix:
        assert _tags(ix, second) == [] and sorted(_tags(ix, first)) == ["Hero", "été"]
