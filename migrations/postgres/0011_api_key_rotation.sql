-- A rotated API key acts as the same principal as the key it replaced (its Idempotency-Keys,
-- webhook subscriptions and audit trail carry over): the principal is the first key's id.
ALTER TABLE kaoping_api_keys ADD COLUMN principal_key_id text;
