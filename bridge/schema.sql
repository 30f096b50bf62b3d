-- The mediaidx catalog, schema version 2 (PRAGMA user_version).
-- New catalogs are created from this file; older ones are brought here by bridge/catalog/migrations.py.
-- docs/catalog.md explains every table. Paths are BLOBs of the bytes the storage gave us, relative to
-- the root, so names that are not valid UTF-8 survive exactly; text copies for search live in asset_fts.

CREATE TABLE roots (
    id            INTEGER PRIMARY KEY,
    url           TEXT NOT NULL UNIQUE,        -- absolute local path, or a storage URL
    added_at      REAL NOT NULL,
    last_scan_at  REAL,
    last_scan     TEXT                          -- JSON summary of the last finished scan
);

CREATE TABLE folders (
    id          INTEGER PRIMARY KEY,
    root_id     INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
    relpath     BLOB NOT NULL,                  -- b'' is the root itself
    -- xxh3-64 of (name, size, mtime, inode) of the media files listed when the catalog last matched
    -- this folder exactly; NULL while that is not known. Equal signature => nothing to do in here.
    signature   BLOB,
    file_count  INTEGER NOT NULL DEFAULT 0,
    probed      INTEGER NOT NULL DEFAULT 0,     -- every file in it probed (or failed) at that signature
    thumbed     INTEGER NOT NULL DEFAULT 0,     -- every file in it has a thumbnail (or cannot have one)
    present     INTEGER NOT NULL DEFAULT 1,     -- 0 once the folder itself was not found
    scanned_at  REAL,
    UNIQUE (root_id, relpath)
);

-- No CHECK constraints on kind/status: they cost a fifth of the insert time of a first index, and only
-- bridge/catalog/assets.py writes these columns.
CREATE TABLE assets (
    id            INTEGER PRIMARY KEY,          -- stable: survives changes, moves and renames
    folder_id     INTEGER NOT NULL REFERENCES folders(id),
    name          BLOB NOT NULL,
    kind          TEXT NOT NULL,                -- video | audio | image (bridge.mediatypes)
    ext           TEXT NOT NULL,
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    inode         INTEGER,
    device        INTEGER,
    fingerprint   BLOB,                         -- bridge.scan.fingerprint; NULL until the content was read
    status        TEXT NOT NULL,                -- ok | unprobed | failed | missing
    error         TEXT,                         -- why status is 'failed'
    probe         TEXT,                         -- JSON from bridge.probe.probe_file
    -- copied out of probe for filtering and sorting (bridge.probe.summarize)
    container     TEXT,
    video_codec   TEXT,
    audio_codec   TEXT,
    width         INTEGER,
    height        INTEGER,
    duration      REAL,
    fps_num       INTEGER,
    fps_den       INTEGER,
    has_audio     INTEGER,
    audio_silent  INTEGER,
    captured_at   TEXT,                         -- ISO 8601 as the file states it (with its zone if any)
    captured_utc  REAL,
    camera_make   TEXT,
    camera_model  TEXT,
    thumb         TEXT,                         -- path inside the thumbnail cache
    -- user data: never touched by scans
    rating        INTEGER CHECK (rating BETWEEN 0 AND 5),
    note          TEXT,
    added_at      REAL NOT NULL,
    updated_at    REAL NOT NULL,
    probed_at     REAL,
    missing_since REAL,
    UNIQUE (folder_id, name)
);
CREATE INDEX assets_size ON assets (size);
CREATE INDEX assets_captured ON assets (captured_utc);
CREATE INDEX assets_fingerprint ON assets (fingerprint) WHERE fingerprint IS NOT NULL;

CREATE TABLE tags (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE COLLATE NOCASE
);

CREATE TABLE asset_tags (
    asset_id  INTEGER NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    tag_id    INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (asset_id, tag_id)
) WITHOUT ROWID;
CREATE INDEX asset_tags_tag ON asset_tags (tag_id);

-- Verified copies made by the backup workflow action.
CREATE TABLE backups (
    id          INTEGER PRIMARY KEY,
    asset_id    INTEGER REFERENCES assets(id) ON DELETE SET NULL,
    source      TEXT NOT NULL,
    dest        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    hash        TEXT NOT NULL,                  -- xxh3-128 of the whole file, hex
    copied_at   REAL NOT NULL
);
CREATE INDEX backups_asset ON backups (asset_id);

-- Scan history; a scan killed half way stays 'running' until the next one marks it 'interrupted'.
CREATE TABLE scans (
    id           INTEGER PRIMARY KEY,
    root_id      INTEGER REFERENCES roots(id) ON DELETE CASCADE,
    started_at   REAL NOT NULL,
    finished_at  REAL,
    status       TEXT NOT NULL,                 -- running | done | cancelled | interrupted | incomplete | failed
    summary      TEXT
);

-- Full-text search over names, folder paths, probe metadata, tags and notes (rowid = assets.id).
CREATE VIRTUAL TABLE asset_fts USING fts5 (
    name, path, meta, tags, note,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Video analysis (bridge/analysis, mediaidx scan --analyze): one row per analysed clip, with its hero
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
