"""A BridgeServer in the test's own process, and the pieces to hang its file-system calls: for tests that
inject a hung mount with monkeypatch or look at the bridge's transfers, which a `mediaidx serve` subprocess
(conftest's bridge_process) would hide."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from blender_mediaidx.core.client import BridgeClient
from bridge.service import BridgeServer

STUCK_S = 60  # an injected hang lasts at most this long (the tests release it long before)


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


class Hang:
    """Wraps ``real`` so that calls for which ``when(*args)`` holds block until ``release()`` (a hung mount);
    ``wait_entered(n)`` waits for n of them to block, ``blocked_threads`` names the threads they blocked."""

    def __init__(self, real: Any, when: Any) -> None:
        self.real, self.when = real, when
        self.entered = threading.Semaphore(0)
        self.released = threading.Event()
        self.blocked_threads: list[str] = []

    def __call__(self, *args: Any) -> Any:
        if not self.released.is_set() and self.when(*args):
            self.blocked_threads.append(threading.current_thread().name)
            self.entered.release()
            self.released.wait(STUCK_S)
        return self.real(*args)

    def wait_entered(self, n: int = 1, timeout: float = 10) -> bool:
        return all(self.entered.acquire(timeout=timeout) for _ in range(n))

    def release(self) -> None:
        self.released.set()


def connect(endpoint: str, name: str, **kw: Any) -> BridgeClient:
    """A started client, connected (fast heartbeats, so a dead bridge is noticed within seconds)."""
    c = BridgeClient(endpoint, name=name, heartbeat_s=0.2, dead_after_s=2.0, **kw).start()
    assert c.wait(lambda: c.state == "connected", 10), c.last_error
    return c


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def fds_on(path: Path) -> list[int]:
    """The descriptors this process (the bridge runs in it) holds open on ``path``."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}") == str(path):
                out.append(int(name))
    return out
