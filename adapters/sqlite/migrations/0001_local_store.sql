-- The shared local store of a SpacePOS node (till app and SpaceFuel service).
--
-- Migrations must stay ADDITIVE (new tables, new nullable or defaulted
-- columns, new indexes): the two processes sharing this file may run different
-- versions for a while, and an older one keeps working on a newer schema
-- (the migrator ignores versions it does not know).
--
-- Times are RFC 3339 UTC text with nanoseconds and a `Z`
-- (`2026-11-24T08:15:02.123456789Z`): fixed width, so they sort as text.
-- JSON values are stored as text.

-- Entities of the ERP's datasets (contract section 3). A deletion keeps a
-- tombstone (deleted = 1, data NULL) with its version, so that an older update
-- cannot bring the entity back. `generation` is the dataset's generation of the
-- last write (see checkpoints.generation).
CREATE TABLE entities (
    dataset    TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    data       TEXT,
    generation INTEGER NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (dataset, id)
);
-- The sweep at the end of a snapshot: rows of older generations.
CREATE INDEX entities_by_generation ON entities (dataset, generation);
-- Checkpoint.entities counts live entities without reading the rows.
CREATE INDEX entities_live ON entities (dataset) WHERE deleted = 0;

-- Where each dataset stands. `generation` grows with every snapshot started;
-- every write to an entity stamps the dataset's current generation, and the
-- last page of a snapshot removes the rows no write of that generation touched.
CREATE TABLE checkpoints (
    dataset         TEXT    NOT NULL PRIMARY KEY,
    last_sequence   INTEGER,          -- NULL before the first complete snapshot
    snapshot_as_of  INTEGER,          -- NULL when no snapshot is in progress
    snapshot_cursor TEXT,             -- the cursor of the next page
    snapshot_pages  INTEGER,
    snapshot_items  INTEGER,
    generation      INTEGER NOT NULL DEFAULT 0,
    last_applied_at TEXT
);

-- Ids of the integration events applied (dedupe of redeliveries). Keyed by
-- the id alone (WITHOUT ROWID: one B-tree, not a table plus a unique index:
-- ids are random, so every insert lands on a random page).
CREATE TABLE inbox (
    event_id    TEXT    NOT NULL PRIMARY KEY,
    dataset     TEXT    NOT NULL,
    sequence    INTEGER NOT NULL,
    recorded_at TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX inbox_by_recorded_at ON inbox (recorded_at);

-- Outbound operations. `seq` is the creation order across every process
-- (AUTOINCREMENT: never reused, even after rows are deleted); `id` is the
-- idempotency key chosen by the caller.
CREATE TABLE outbox (
    seq             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    destination     TEXT    NOT NULL CHECK (destination IN ('erp', 'bus')),
    kind            TEXT    NOT NULL,
    occurred_at     TEXT    NOT NULL,
    store_staff_id  TEXT,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'parked')),
    created_at      TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    completed_at    TEXT
);
-- The send loop: pending entries of a destination in creation order. (A
-- partial index `WHERE state = 'pending'` is not chosen by the planner over
-- outbox_by_state; this one is.)
CREATE INDEX outbox_pending ON outbox (state, destination, seq);
-- Status screens: entries of a state, newest first; counts per state.
CREATE INDEX outbox_by_state ON outbox (state, seq);

-- Small JSON facts of the node's runtime (spacepos_config::keys).
CREATE TABLE config_state (
    key        TEXT NOT NULL PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
