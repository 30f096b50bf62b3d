"""Schema migrations: ``STEPS[n]`` brings a catalog from version n to n + 1 inside one transaction.

``bridge/schema.sql`` always holds the newest schema for new catalogs; when it changes, bump
``SCHEMA_VERSION`` and add the step that turns the previous version into it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 1

Step = Callable[[sqlite3.Connection], None]

STEPS: dict[int, Step] = {
    # 1: _v1_to_v2,
}


def pending(version: int) -> list[tuple[int, Step]]:
    """The steps from ``version`` to SCHEMA_VERSION, in order."""
    return [(v, STEPS[v]) for v in range(version, SCHEMA_VERSION)]
