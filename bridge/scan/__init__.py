"""Scanning roots into the catalog: walk, diff by metadata, read what changed, resolve moves."""

from .scanner import ProgressFn, ScanEvent, Scanner, ScanOptions, folder_signature

__all__ = ["ProgressFn", "ScanEvent", "ScanOptions", "Scanner", "folder_signature"]
