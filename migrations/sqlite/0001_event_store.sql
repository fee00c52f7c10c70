-- The event store and its ledger leaves (see postgres/0001 for the reasoning). The layout of
-- kaoping_events is eventsourcing 9.5's SQLite application recorder's; its notification id
-- is the rowid, which only ever grows because rows are never deleted.

CREATE TABLE kaoping_events (
    originator_id TEXT,
    originator_version INTEGER,
    topic TEXT,
    state BLOB,
    PRIMARY KEY (originator_id, originator_version)
);

CREATE TABLE kaoping_ledger (
    position INTEGER PRIMARY KEY CHECK (position >= 0),
    notification_id INTEGER NOT NULL UNIQUE,
    stream_id TEXT NOT NULL,
    stream_version INTEGER NOT NULL CHECK (stream_version >= 1),
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    UNIQUE (stream_id, stream_version)
);

CREATE TRIGGER kaoping_events_no_update BEFORE UPDATE ON kaoping_events
BEGIN SELECT RAISE(ABORT, 'kaoping_events is append-only: UPDATE refused'); END;
CREATE TRIGGER kaoping_events_no_delete BEFORE DELETE ON kaoping_events
BEGIN SELECT RAISE(ABORT, 'kaoping_events is append-only: DELETE refused'); END;
CREATE TRIGGER kaoping_ledger_no_update BEFORE UPDATE ON kaoping_ledger
BEGIN SELECT RAISE(ABORT, 'kaoping_ledger is append-only: UPDATE refused'); END;
CREATE TRIGGER kaoping_ledger_no_delete BEFORE DELETE ON kaoping_ledger
BEGIN SELECT RAISE(ABORT, 'kaoping_ledger is append-only: DELETE refused'); END;
