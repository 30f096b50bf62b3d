"""Scanning roots into the catalog: walk, diff by metadata, read what changed, resolve moves."""

from .scanner import ProgressFn, ScanEvent, Scanner, ScanOptions

__all__ = ["ProgressFn", "ScanEvent", "ScanOptions", "Scanner"]
