-- A subscription lives no longer than the credential that made it: `via` (api-key | token)
-- and, for a person's token, when it expires at the latest. When the owning API key principal
-- has no unrevoked key left, or the token has expired, the deliverer suspends the subscription
-- (`suspended_at`, `suspended_reason`): nothing more is queued or sent, and nothing resumes
-- it silently. An operator's `kaoping webhooks remove ID --reason` records `deleted_reason`.
-- Rows made before this migration are API-key or token owned as their owner id says.
ALTER TABLE kaoping_webhook_subscriptions
    ADD COLUMN via text,
    ADD COLUMN credential_expires_at double precision,
    ADD COLUMN suspended_at text,
    ADD COLUMN suspended_reason text,
    ADD COLUMN deleted_reason text;
UPDATE kaoping_webhook_subscriptions
    SET via = CASE WHEN owner LIKE 'key:%' THEN 'api-key' ELSE 'token' END;
