"""Where the catalog and the caches live: flags beat environment variables beat per-user defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "mediaidx"


def default_catalog_path() -> Path:
    env = os.environ.get("MEDIAIDX_CATALOG")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_data_path(APP) / "catalog.sqlite"


def default_cache_dir() -> Path:
    env = os.environ.get("MEDIAIDX_CACHE")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_cache_path(APP)


@dataclass(frozen=True)
class Settings:
    """Resolved locations for one indexer instance."""

    catalog_path: Path
    cache_dir: Path

    @property
    def thumbs_dir(self) -> Path:
        return self.cache_dir / "thumbs"

    @classmethod
    def resolve(
        cls, catalog: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None
    ) -> Settings:
        """Catalog: argument, MEDIAIDX_CATALOG, per-user data dir. Cache: argument, MEDIAIDX_CACHE, then
        beside a catalog that was chosen by hand (two catalogs never share thumbnails), else per-user cache."""
        cat = Path(catalog).expanduser() if catalog else default_catalog_path()
        if cache_dir:
            cache = Path(cache_dir).expanduser()
        elif os.environ.get("MEDIAIDX_CACHE") or not (catalog or os.environ.get("MEDIAIDX_CATALOG")):
            cache = default_cache_dir()
        else:
            cache = cat.parent / f"{cat.stem}.cache"
        return cls(catalog_path=cat.absolute(), cache_dir=cache.absolute())
