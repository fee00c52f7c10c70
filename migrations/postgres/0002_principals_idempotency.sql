-- API keys of systems (hashes only) and the idempotency store. Neither is part of the
-- append-only log: keys can be revoked, idempotency records expire.

CREATE TABLE kaoping_api_keys (
    key_id text PRIMARY KEY,
    key_hash bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    name text NOT NULL,
    role text NOT NULL,
    acts_as text,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE TABLE kaoping_idempotency (
    principal text NOT NULL,
    idem_key text NOT NULL,
    fingerprint bytea NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'done')),
    created_at timestamptz NOT NULL,
    response_status integer,
    stream_id text,
    stream_version bigint,
    positions text,
    PRIMARY KEY (principal, idem_key)
);

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON kaoping_api_keys TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON kaoping_idempotency TO %I', app);
END $$;
