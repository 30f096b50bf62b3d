"""Schema migrations: ``STEPS[n]`` brings a catalog from version n to n + 1 inside one transaction.

``bridge/schema.sql`` always holds the newest schema for new catalogs; when it changes, bump
``SCHEMA_VERSION`` and add the step that turns the previous version into it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 2

Step = Callable[[sqlite3.Connection], None]


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Video analysis: the analyses, shots and keyframes tables (as in schema.sql)."""
    from .database import _statements

    for statement in _statements(_V2_TABLES):
        conn.execute(statement)


_V2_TABLES = """-- Video analysis (bridge/analysis, mediaidx scan --analyze): one row per analysed clip, with its hero
-- image; its shots and one key frame per shot. Rows go with their asset (ON DELETE CASCADE).
CREATE TABLE analyses (
    asset_id     INTEGER PRIMARY KEY REFERENCES assets(id) ON DELETE CASCADE,
    fingerprint  BLOB,                          -- the content analysed; a changed file is analysed again
    version      INTEGER NOT NULL,              -- bridge.analysis.ANALYSIS_VERSION
    analyzed_at  REAL NOT NULL,
    frames       INTEGER,
    fps          REAL,
    shot_count   INTEGER NOT NULL DEFAULT 0,
    hero         TEXT,                          -- path inside the thumbnail cache; '' = none
    hero_frame   INTEGER,
    hero_time    REAL,
    hero_scores  TEXT,                          -- JSON: every measure behind the pick
    error        TEXT                           -- why the clip could not be analysed
);

CREATE TABLE shots (
    asset_id          INTEGER NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    idx               INTEGER NOT NULL,         -- 0-based, in time order
    start_frame       INTEGER NOT NULL,
    end_frame         INTEGER NOT NULL,         -- inclusive
    start_time        REAL NOT NULL,
    end_time          REAL NOT NULL,
    boundary          TEXT NOT NULL,            -- how it starts: start | cut | fade | dissolve
    score             REAL,
    transition_start  INTEGER,                  -- frames of the fade/dissolve leading into it
    transition_end    INTEGER,
    PRIMARY KEY (asset_id, idx)
) WITHOUT ROWID;

CREATE TABLE keyframes (
    asset_id  INTEGER NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    shot      INTEGER NOT NULL,
    frame     INTEGER NOT NULL,
    time      REAL NOT NULL,
    scores    TEXT NOT NULL,                    -- JSON: sharpness, exposure, colourfulness, faces, ... total
    PRIMARY KEY (asset_id, shot)
) WITHOUT ROWID;
"""

STEPS: dict[int, Step] = {
    1: _v1_to_v2,
}


def pending(version: int) -> list[tuple[int, Step]]:
    """The steps from ``version`` to SCHEMA_VERSION, in order."""
    return [(v, STEPS[v]) for v in range(version, SCHEMA_VERSION)]
