"""Fixtures for the HTTP service: a real catalog of generated media, the app in-process (TestClient), and a
real `mediaidx serve` process with HTTP on a random loopback port."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bridge import MediaIndexer
from bridge.demo import build_demo_library
from bridge.service.rootpolicy import RootPolicy
from bridge.web import WebContext, create_app

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(library, catalog, cache): the `make demo` library (clips with timecode, camera and audio; stills with
    EXIF; a WAV) scanned with thumbnails. Tests copy it before changing anything."""
    base = tmp_path_factory.mktemp("web")
    lib = build_demo_library(base / "library")
    cat, cache = base / "catalog.sqlite", base / "cache"
    with MediaIndexer(cat, cache_dir=cache) as ix:
        summary = ix.scan(lib, thumbs=True)
        assert summary.added == 7 and summary.failed == 0
    return lib, cat, cache


@pytest.fixture
def catalog(demo_catalog: tuple[Path, Path, Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    """A private copy of the demo catalog (same library, same thumbnails)."""
    lib, cat, cache = demo_catalog
    shutil.copy(cat, tmp_path / "catalog.sqlite")
    return lib, tmp_path / "catalog.sqlite", cache


def make_client(cat: Path, cache: Path, token: str | None = None, **kw: object) -> TestClient:
    return TestClient(create_app(WebContext(cat, cache, token=token, **kw)), base_url="http://127.0.0.1:8765")


@pytest.fixture
def client(catalog: tuple[Path, Path, Path], tmp_path: Path) -> Iterator[TestClient]:
    """The app over a private catalog; the test's tmp_path is allowed (as `serve --allow-root` would), so tests
    can scan new folders and write backups there."""
    _lib, cat, cache = catalog
    with make_client(cat, cache, policy=RootPolicy([tmp_path])) as c:
        yield c
        c.app.state.ctx.jobs.close()


class ServeProcess:
    """`mediaidx serve` with ZeroMQ and HTTP on free loopback ports."""

    def __init__(self, cat: Path, cache: Path, extra: list[str] | None = None, env: dict[str, str] | None = None,
                 verbose: bool = False) -> None:
        cmd = [sys.executable, "-m", "bridge.cli.app", "--catalog", str(cat), "--cache-dir", str(cache),
               *(["-v"] if verbose else []), "serve",
               "--bind", "tcp://127.0.0.1:*", "--http", "127.0.0.1:0", *(extra or [])]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        first = self.proc.stdout.readline()
        second = self.proc.stdout.readline()
        if "listening on" not in first or "dashboard on" not in second:
            self.stop()
            raise RuntimeError(f"serve did not start: {first!r} {second!r} {self.proc.stderr.read()}")
        self.endpoint = first.split("listening on ", 1)[1].split()[0]
        self.url = second.split("dashboard on ", 1)[1].split()[0].rstrip("/")

    def http(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)  # type: ignore[arg-type]

    def stop(self) -> str:
        """Stop it and return what it wrote to stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read() if self.proc.stderr else ""


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(cat: Path, cache: Path, extra: list[str] | None = None, env: dict[str, str] | None = None,
              verbose: bool = False) -> ServeProcess:
        p = ServeProcess(cat, cache, extra, env, verbose)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def wait_job(c: httpx.Client | TestClient, job_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        j = c.get(f"/api/jobs/{job_id}").json()
        if j["state"] != "running":
            return j
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")
