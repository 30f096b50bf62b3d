"""Fixtures for the network-storage tests: one real server per test (see remote_servers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_servers import BACKENDS, Remote, SFTPRemote, make_remote


@pytest.fixture(params=BACKENDS)
def remote(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Remote]:
    """One running server per test, with its credentials in the environment."""
    r = make_remote(request.param, tmp_path / "server")
    for k, v in r.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(tmp_path / "no-storage.toml"))
    try:
        yield r
    finally:
        r.stop()
        if isinstance(r, SFTPRemote):
            r.shutdown()
