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
