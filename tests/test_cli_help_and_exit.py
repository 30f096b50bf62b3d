"""What `--help` shows is what the code says, and scripts can trust `mediaidx run --json`'s exit status."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from bridge.cli.app import app

CLI = [sys.executable, "-m", "bridge.cli.app"]


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():  # typer's groups need not be click.Group
        yield from _commands(sub, (*path, name))


def _bracketed(text: str | None) -> list[str]:
    """The [..] pieces of a help text as a user should read them: rich markup escapes (\\[) undone."""
    return [m.replace("\\[", "[") for m in re.findall(r"\\?\[[^\[\]]*\]", text or "")]


def test_help_text_in_brackets_is_shown_not_eaten_as_markup() -> None:
    """Rich took [steps], [user@] and [default: ...] in help texts for markup tags and dropped them."""
    checked = 0
    for path, cmd in _commands(typer.main.get_command(app)):
        texts = [cmd.help] + [getattr(p, "help", None) for p in cmd.params]
        wanted = [b for t in texts for b in _bracketed(t)]
        if not wanted:
            continue
        r = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
        assert r.exit_code == 0, r.output
        shown = re.sub(r"\s+", "", r.output.replace("│", ""))
        for piece in wanted:
            assert re.sub(r"\s+", "", piece) in shown, f"{piece!r} missing from `mediaidx {' '.join(path)} --help`"
            checked += 1
    assert checked >= 4  # run's [steps], serve's [default: ...], track's survey, credentials' [user@]


def test_run_json_exits_1_when_a_step_failed(tmp_path: Path) -> None:
    """`run --json` printed the failed step but exited 0, so a cron job or CI step saw success."""
    spec = json.dumps({"workflow": [{"action": "stats"}, {"action": "scan", "root": str(tmp_path / "gone")}],
                       "continue_on_error": True})
    r = subprocess.run([*CLI, "--catalog", str(tmp_path / "c.sqlite"), "run", "-", "--json"], input=spec,
                       capture_output=True, text=True, timeout=120)
    out = json.loads(r.stdout)
    assert [s["status"] for s in out["steps"]] == ["ok", "failed"], out
    assert r.returncode == 1
    ok = subprocess.run([*CLI, "--catalog", str(tmp_path / "c.sqlite"), "run", "-", "--json"],
                        input=json.dumps({"action": "stats"}), capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and json.loads(ok.stdout)["steps"][0]["status"] == "ok"
