"""Fixtures for the network-storage tests: one real server per test (see remote_servers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_servers import BACKENDS, Remote, SFTPRemote, make_remote, use_server


@pytest.fixture(params=BACKENDS)
def remote(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Remote]:
    """One running server per test, with its credentials in the environment."""
    r = use_server(make_remote(request.param, tmp_path / "server"), monkeypatch, tmp_path)
    try:
        yield r
    finally:
        r.stop()
        if isinstance(r, SFTPRemote):
            r.shutdown()
