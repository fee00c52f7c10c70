-- See postgres/0003.
CREATE TABLE kaoping_projection_tracking (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL CHECK (position >= -1)
);

CREATE TABLE rm_event_counts (
    topic TEXT PRIMARY KEY,
    events INTEGER NOT NULL,
    last_position INTEGER NOT NULL
);

CREATE TABLE rm_units (
    unit_id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    category TEXT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL
);
