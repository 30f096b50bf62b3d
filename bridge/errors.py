"""Errors a user sees as one clear line. Anything else escaping to the CLI is a bug."""

from __future__ import annotations


class MediaIdxError(Exception):
    """Base class: the message is shown to the user as is, with exit code ``exit_code``."""

    exit_code = 1


class UsageError(MediaIdxError):
    exit_code = 2


class CatalogError(MediaIdxError):
    pass


class NotFoundError(MediaIdxError):
    pass


class RootUnavailableError(MediaIdxError):
    """A scan root cannot be reached (unmounted share, missing folder, wrong credentials)."""


class ProbeError(MediaIdxError):
    """A file could not be probed; the message says why (empty, not media, truncated...)."""


class WorkflowError(MediaIdxError):
    exit_code = 2


class Cancelled(MediaIdxError):
    """A long job was cancelled by its caller."""


class ThumbnailError(MediaIdxError):
    """No thumbnail could be made; the message says why."""
