"""The SQLite catalog: connection and migrations, asset rows, search, user metadata, statistics."""

from .database import Catalog, copy_catalog, schema_sql
from .migrations import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Catalog", "copy_catalog", "schema_sql"]
