"""What every request handler shares: where the catalog is, one MediaIndexer per thread, the job manager,
and (inside `mediaidx serve`) the running ZeroMQ bridge for sessions and pushes."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..indexer import MediaIndexer
from ..service.rootpolicy import RootPolicy
from .jobs import JobManager

if TYPE_CHECKING:
    from ..service.server import BridgeServer


@dataclass
class WebContext:
    """``bridge`` is None when the app runs without the ZeroMQ service (tests, embedding). ``policy`` says
    what clients may scan beyond the catalog's roots: the bridge's own inside `mediaidx serve`, else nothing
    more (bridge/service/rootpolicy.py)."""

    catalog: Path
    cache_dir: Path
    token: str | None = None
    bridge: BridgeServer | None = None
    check_host: bool = True
    policy: RootPolicy | None = None
    jobs: JobManager = field(init=False)
    _local: threading.local = field(init=False, default_factory=threading.local)

    def __post_init__(self) -> None:
        if self.policy is None:
            self.policy = self.bridge.policy if self.bridge is not None else RootPolicy()
        self.jobs = JobManager(self.catalog, self.cache_dir, self.bridge)

    def roots(self) -> list[str]:
        """The catalog's roots (what a client may always scan)."""
        return [r["url"] for r in self.indexer().roots()]

    def root_policy(self) -> RootPolicy:
        assert self.policy is not None  # set in __post_init__
        return self.policy

    @classmethod
    def create(cls, catalog: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None,
               **kw: Any) -> WebContext:
        """Resolve the catalog and cache folders as the CLI does (flags, environment, per-user defaults)."""
        with MediaIndexer(catalog, cache_dir=cache_dir) as ix:
            return cls(ix.settings.catalog_path, ix.settings.cache_dir, **kw)

    def indexer(self) -> MediaIndexer:
        """This thread's MediaIndexer: a catalog connection belongs to the thread that opened it."""
        ix = getattr(self._local, "ix", None)
        if ix is None:
            ix = self._local.ix = MediaIndexer(self.catalog, cache_dir=self.cache_dir)
        return ix
