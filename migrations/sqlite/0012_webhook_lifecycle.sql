-- See postgres/0012.
ALTER TABLE kaoping_webhook_subscriptions ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE kaoping_webhook_subscriptions ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE kaoping_webhook_subscriptions ADD COLUMN deleted_at TEXT;
ALTER TABLE kaoping_webhook_subscriptions ADD COLUMN change_key TEXT;
ALTER TABLE kaoping_webhook_subscriptions ADD COLUMN change_fingerprint TEXT;
