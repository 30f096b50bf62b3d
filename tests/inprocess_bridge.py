"""A BridgeServer in the test's own process: for tests that hang its file-system calls with monkeypatch or look
at its transfers, which a `mediaidx serve` subprocess (conftest's bridge_process) would hide."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bridge.service import BridgeServer


@contextlib.contextmanager
def bridge_in_process(cat: Path, cache: Path, *, name: str = "bridge-loop", **kw: Any) -> Iterator[BridgeServer]:
    """The bridge over ``cat`` on a free loopback port, its loop on a thread called ``name``; stopped after."""
    server = BridgeServer(cat, bind="tcp://127.0.0.1:0", cache_dir=cache, **kw)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    server.wait_ready()
    try:
        yield server
    finally:
        server.stop()
        thread.join(10)
