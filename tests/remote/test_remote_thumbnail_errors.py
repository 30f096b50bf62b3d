"""A thumbnail asked for over HTTP of a file on a remote root whose storage fails: a clear 503 naming the
root (no secret), not a 500 from a library exception or a 404 "no thumbnail" that blames the file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from remote_servers import SECRET, S3Remote, use_server

from bridge import MediaIndexer, synth
from bridge.web.app import create_app
from bridge.web.context import WebContext


@pytest.fixture
def s3_clip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3Remote, int, TestClient]]:
    r = use_server(S3Remote(tmp_path / "server"), monkeypatch, tmp_path)
    clip = tmp_path / "c.mp4"
    synth.make_video(clip, frames=5, width=64, height=48)
    r.put("reel/c.mp4", clip.read_bytes())
    cat, cache = tmp_path / "cat.sqlite", tmp_path / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        ix.scan(r.url, probe=False)  # no thumbnail yet: the web makes it on demand
        (asset,) = ix.get_recent(5)
    client = TestClient(create_app(WebContext(cat, cache)), base_url="http://127.0.0.1:8765")
    try:
        yield r, asset.id, client
    finally:
        client.app.state.ctx.jobs.close()
        r.stop()


def test_thumbnail_made_on_demand_from_the_bucket(s3_clip: tuple[S3Remote, int, TestClient]) -> None:
    _r, asset_id, client = s3_clip
    got = client.get(f"/api/assets/{asset_id}/thumbnail")
    assert got.status_code == 200 and got.headers["content-type"].startswith("image/")


def test_storage_down_is_503_naming_the_root(s3_clip: tuple[S3Remote, int, TestClient]) -> None:
    r, asset_id, client = s3_clip
    r.stop()
    got = client.get(f"/api/assets/{asset_id}/thumbnail")
    assert got.status_code == 503, got.text  # was 404 "no thumbnail for this asset"
    assert r.url in got.json()["error"]["message"] and SECRET not in got.text


def test_missing_credentials_are_503_not_a_500(s3_clip: tuple[S3Remote, int, TestClient],
                                                 monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    r, asset_id, client = s3_clip
    for k in r.env:
        monkeypatch.delenv(k)
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    got = client.get(f"/api/assets/{asset_id}/thumbnail")
    assert got.status_code == 503, got.text  # was 500 (botocore's NoCredentialsError)
    assert "credentials" in got.json()["error"]["message"].lower()


def test_deleted_object_is_404(s3_clip: tuple[S3Remote, int, TestClient]) -> None:
    r, asset_id, client = s3_clip
    r.delete("reel/c.mp4")
    got = client.get(f"/api/assets/{asset_id}/thumbnail")
    assert got.status_code == 404 and "not there" in got.json()["error"]["message"]


def test_bridge_thumbnail_of_a_storage_down_is_unavailable(s3_clip: tuple[S3Remote, int, TestClient], tmp_path: Path,
                                                          bridge_process) -> None:
    """The ZeroMQ thumbnail op: `unavailable` (worth asking again later), not `bad_request`."""
    from blender_mediaidx.core import protocol as P
    from blender_mediaidx.core.client import BridgeClient

    r, asset_id, _client = s3_clip
    bridge = bridge_process(tmp_path / "cat.sqlite", tmp_path / "cache")
    c = BridgeClient(bridge.endpoint, name="thumbs").start()
    try:
        assert c.wait(lambda: c.state == "connected", 10), c.last_error
        r.stop()
        with pytest.raises(P.RemoteError) as err:
            c.call("thumbnail", {"asset": asset_id}, timeout_s=60)
        assert err.value.code == P.UNAVAILABLE and r.url in str(err.value) and SECRET not in str(err.value)
    finally:
        c.stop()
