-- Webhook subscriptions and their delivery log (operational state, not evidence: the events
-- they carry are in the log and the ledger; a delivery row records what was sent and how it went).
CREATE TABLE kaoping_webhook_subscriptions (
    id text PRIMARY KEY,
    owner text NOT NULL,          -- the principal that subscribed (its role filters the events)
    role text NOT NULL,
    url text NOT NULL,
    event_types text NOT NULL,    -- JSON list; empty = every type the role may see
    secret text NOT NULL,         -- whsec_...; the HMAC key (Standard Webhooks)
    idempotency_key text,
    fingerprint text,
    after_position bigint NOT NULL,  -- events up to here have been queued for delivery
    active boolean NOT NULL,
    created_at text NOT NULL,
    UNIQUE (owner, idempotency_key)
);
CREATE INDEX kaoping_webhook_subscriptions_owner ON kaoping_webhook_subscriptions (owner, id);

CREATE TABLE kaoping_webhook_deliveries (
    id bigserial PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES kaoping_webhook_subscriptions (id),
    position bigint NOT NULL,
    event_type text NOT NULL,
    state text NOT NULL,          -- pending | delivered | failed
    attempts integer NOT NULL,
    first_attempt_at double precision,
    next_attempt_at double precision NOT NULL,
    last_status integer,
    last_error text,
    delivered_at text,
    redeliver_key text,
    UNIQUE (subscription_id, position)
);
CREATE INDEX kaoping_webhook_deliveries_due ON kaoping_webhook_deliveries (state, next_attempt_at);

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON kaoping_webhook_subscriptions, '
                   'kaoping_webhook_deliveries TO %I', app);
    EXECUTE format('GRANT USAGE ON SEQUENCE kaoping_webhook_deliveries_id_seq TO %I', app);
END $$;
