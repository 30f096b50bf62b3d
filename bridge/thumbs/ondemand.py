"""A thumbnail made when it is asked for (the scan ran without --thumbs), for the web and ZeroMQ services.

Both services serve what comes out to their clients, so the file is held to the same rule as a download:
inside a catalog root once symlinks are resolved, and a regular file (a FIFO in its place would hold the
request forever)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..catalog import search as search_mod
from ..errors import NotFoundError, RootUnavailableError

if TYPE_CHECKING:
    from ..indexer import MediaIndexer


def served_local_file(ix: MediaIndexer, url: str, rel: bytes) -> bytes:
    """The real path of ``rel`` on the local root ``url``: Forbidden outside the catalog's roots (symlinks
    followed), NotFoundError when gone or no longer a regular file."""
    roots = [r["url"] for r in ix.roots() if "://" not in r["url"]]
    return checked_local_file(os.fsencode(url).rstrip(b"/") + b"/" + rel, roots)


def checked_local_file(full: bytes, roots: list[str]) -> bytes:
    """`served_local_file` given the catalog's roots: no catalog access, so the bridge runs it on a file-op
    thread keyed by the file's root (a mount that hangs holds up that root's calls only)."""
    from ..service.security import Forbidden, contained

    path = contained(full, roots)
    if not os.path.isfile(path):
        raise NotFoundError("the file is not there any more")
    if not os.access(path, os.R_OK):
        raise Forbidden("the file cannot be read")
    return path


def poster_on_demand(ix: MediaIndexer, asset_id: int) -> Path:
    """The asset's thumbnail in the cache, made now from the file when the scan did not make one."""
    cached = cached_poster(ix, asset_id)
    return cached if cached is not None else make_poster(ix, asset_id)


def cached_poster(ix: MediaIndexer, asset_id: int) -> Path | None:
    """The asset's thumbnail when the cache has it (no look at the media file)."""
    a = ix.get(asset_id)
    return Path(a.thumb) if a.thumb and Path(a.thumb).is_file() else None


def make_poster(ix: MediaIndexer, asset_id: int, checked: bytes | None = None) -> Path:
    """Make the asset's thumbnail from its file; ``checked``: the real path `checked_local_file` gave for a
    local file (checked here when None)."""
    from ..scan.analyze import Task, analyze

    a = ix.get(asset_id)
    url, rel = search_mod.native_path(ix._read_db().conn, asset_id)
    if "://" not in url:
        # made from the real path just checked, not the catalogued one again (a link swapped in meanwhile)
        real = checked if checked is not None else served_local_file(ix, url, rel)
        folder, _, name = real.rpartition(b"/")
        url, rel = os.fsdecode(folder or b"/"), name
    out = analyze(Task(url, rel, a.size, a.kind, want_thumb=True, thumbs_dir=str(ix.thumbs_dir)))
    if out.unreachable:  # the storage is down or refuses us: say so (503), not "no thumbnail" (404)
        raise RootUnavailableError(out.unreachable if out.unreachable.startswith(url) else f"{url}: {out.unreachable}")
    if out.vanished:
        raise NotFoundError("the file is not there any more")
    if not out.thumb:
        raise NotFoundError(out.thumb_error or out.error or "no thumbnail for this asset")
    return ix.thumbs_dir / out.thumb
