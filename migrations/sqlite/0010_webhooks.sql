-- See postgres/0010.
CREATE TABLE kaoping_webhook_subscriptions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    role TEXT NOT NULL,
    url TEXT NOT NULL,
    event_types TEXT NOT NULL,
    secret TEXT NOT NULL,
    idempotency_key TEXT,
    fingerprint TEXT,
    after_position INTEGER NOT NULL,
    active INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (owner, idempotency_key)
);
CREATE INDEX kaoping_webhook_subscriptions_owner ON kaoping_webhook_subscriptions (owner, id);

CREATE TABLE kaoping_webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT NOT NULL REFERENCES kaoping_webhook_subscriptions (id),
    position INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_attempt_at REAL,
    next_attempt_at REAL NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    delivered_at TEXT,
    redeliver_key TEXT,
    UNIQUE (subscription_id, position)
);
CREATE INDEX kaoping_webhook_deliveries_due ON kaoping_webhook_deliveries (state, next_attempt_at);
