"""Audio-waveform sync: offsets (and clock drift) between recordings of the same event."""

from .align import SyncResult
from .group import sync_files

__all__ = ["SyncResult", "sync_files"]
