-- A subscription can be paused, resumed and deleted. Deleting deactivates (active = false,
-- deleted_at set): the row and its delivery log stay readable for audit, so the application
-- role still needs no DELETE on either table (0010 grants SELECT, INSERT, UPDATE only).
-- `version` is the subscription's ETag (If-Match on every change); `change_key` and
-- `change_fingerprint` remember the Idempotency-Key of the last change, so its retry is a replay.
ALTER TABLE kaoping_webhook_subscriptions
    ADD COLUMN paused boolean NOT NULL DEFAULT false,
    ADD COLUMN version integer NOT NULL DEFAULT 1,
    ADD COLUMN deleted_at text,
    ADD COLUMN change_key text,
    ADD COLUMN change_fingerprint text;
