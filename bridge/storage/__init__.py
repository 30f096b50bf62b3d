"""Storage backends behind one interface; ``open_storage`` picks one from a root string."""

from __future__ import annotations

import os

from ..errors import UsageError
from .base import FileStat, FolderError, Listing, Storage, StorageUnreachable, folder_signature, join, split
from .credentials import is_remote, redact
from .local import LocalStorage

__all__ = ["FileStat", "FolderError", "Listing", "LocalStorage", "Storage", "StorageUnreachable", "folder_signature",
           "is_remote", "join", "open_storage", "split"]


def open_storage(root: str | bytes | os.PathLike[str], *, follow_symlinks: bool = False,
                 endpoint_url: str | None = None) -> Storage:
    """A Storage for a local path, a ``file://`` URL or a remote root (``s3://``, ``s3+http(s)://``,
    ``smb://``, ``sftp://``; see ``bridge.storage.remote``). ``endpoint_url`` points ``s3://`` at any
    S3-compatible service; it becomes part of the root's URL."""
    if isinstance(root, str) and "://" in root:
        scheme = root.split("://", 1)[0].lower()
        if scheme == "file":
            return LocalStorage(root[len("file://"):], follow_symlinks=follow_symlinks)
        if is_remote(root):
            from .remote import storage_for

            return storage_for(root, endpoint_url=endpoint_url)
        raise UsageError(f"{redact(root)}: storage scheme '{scheme}://' is not supported "
                         "(local paths, file://, s3://, smb:// and sftp:// are)")
    if endpoint_url:
        raise UsageError("--endpoint-url only applies to s3:// roots")
    return LocalStorage(root, follow_symlinks=follow_symlinks)
