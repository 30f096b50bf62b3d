"""Shared fixtures: the real-media corpus (read-only) and synthetic media with known truth."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("MEDIAIDX_CORPUS", REPO.parent / "shared" / "corpus"))


def corpus_available() -> bool:
    return (CORPUS / "MANIFEST.tsv").is_file()


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared real-media corpus; tests that need it skip when it is absent."""
    if not corpus_available():
        pytest.skip(f"real-media corpus not found at {CORPUS} (set MEDIAIDX_CORPUS to its folder)")
    return CORPUS


@pytest.fixture(scope="session")
def corpus_manifest(corpus: Path) -> dict[str, dict[str, str]]:
    """MANIFEST.tsv rows keyed by relative path."""
    with open(corpus / "MANIFEST.tsv", newline="", encoding="utf-8") as fh:
        return {row["path"]: row for row in csv.DictReader(fh, delimiter="\t")}


class BridgeProcess:
    """A real `mediaidx serve` process on a random loopback port, over a catalog of its own."""

    def __init__(self, catalog: Path, cache: Path, extra: list[str] | None = None) -> None:
        import subprocess
        import sys

        self.catalog = catalog
        self.cache = cache
        cmd = [sys.executable, "-m", "bridge.cli.app", "--catalog", str(catalog), "--cache-dir", str(cache),
               "serve", "--bind", "tcp://127.0.0.1:*", *(extra or [])]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"bridge did not start: {line!r} {self.proc.stderr.read()}")
        self.endpoint = line.split("listening on ", 1)[1].split()[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:
                self.proc.kill()


@pytest.fixture
def bridge_process(tmp_path: Path):
    """Start a bridge; call it with the catalog folder you want served (scan it first)."""
    started: list[BridgeProcess] = []

    def start(catalog: Path | None = None, cache: Path | None = None, extra: list[str] | None = None) -> BridgeProcess:
        b = BridgeProcess(catalog or tmp_path / "bridge-catalog.sqlite", cache or tmp_path / "bridge-cache", extra)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()
