-- See postgres/0002.
CREATE TABLE kaoping_api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    acts_as TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE kaoping_idempotency (
    principal TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    created_at TEXT NOT NULL,
    response_status INTEGER,
    stream_id TEXT,
    stream_version INTEGER,
    positions TEXT,
    PRIMARY KEY (principal, idem_key)
);
