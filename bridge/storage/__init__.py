"""Storage backends behind one interface; ``open_storage`` picks one from a root string."""

from __future__ import annotations

import os

from ..errors import UsageError
from .base import FileStat, FolderError, Listing, Storage, folder_signature, join, split
from .local import LocalStorage

__all__ = ["FileStat", "FolderError", "Listing", "LocalStorage", "Storage", "folder_signature", "join", "open_storage",
           "split"]


def open_storage(root: str | bytes | os.PathLike[str], *, follow_symlinks: bool = False) -> Storage:
    """A Storage for a local path or a ``file://`` URL. Remote schemes plug in here."""
    if isinstance(root, str) and "://" in root:
        scheme = root.split("://", 1)[0].lower()
        if scheme == "file":
            return LocalStorage(root[len("file://"):], follow_symlinks=follow_symlinks)
        raise UsageError(f"{root}: storage scheme '{scheme}://' is not supported yet (local paths and file:// are)")
    return LocalStorage(root, follow_symlinks=follow_symlinks)
