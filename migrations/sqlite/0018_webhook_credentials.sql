-- See postgres/0018.
ALTER TABLE kaoping_webhook_subscriptions ADD COLUMN via TEXT;
ALTER TABLE kaoping_webhook_subscriptions ADD COLUMN credential_expires_at REAL;
ALTER TABLE kaoping_webhook_subscriptions ADD COLUMN suspended_at TEXT;
ALTER TABLE kaoping_webhook_subscriptions ADD COLUMN suspended_reason TEXT;
ALTER TABLE kaoping_webhook_subscriptions ADD COLUMN deleted_reason TEXT;
UPDATE kaoping_webhook_subscriptions
    SET via = CASE WHEN owner LIKE 'key:%' THEN 'api-key' ELSE 'token' END;
