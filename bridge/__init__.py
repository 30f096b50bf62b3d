"""mediaidx bridge: catalog, scanner, probe and media tools behind one Python API.

    from bridge import MediaIndexer
    ix = MediaIndexer(); ix.scan("/mnt/nas"); ix.get_recent()
"""

from .errors import MediaIdxError
from .indexer import ChangeResult, MediaIndexer
from .models import Asset, PlanItem, ScanIssue, ScanSummary, Stats

__version__ = "0.1.0"

__all__ = ["Asset", "ChangeResult", "MediaIdxError", "MediaIndexer", "PlanItem", "ScanIssue", "ScanSummary",
           "Stats", "__version__"]
