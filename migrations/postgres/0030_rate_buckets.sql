-- One rate limiter shared by every API process (service/throttle.py, KAOPING_RATE_LIMIT_STORE).
-- A token bucket per (limiter, pseudonymised key): throttling state, not a record. UNLOGGED:
-- its writes skip the WAL (one UPSERT per request must stay cheap), it is not replicated, and
-- a crash of the primary empties it (every client starts again with a full burst).
-- The application role may UPDATE and DELETE here, the stated exception to append-only: a
-- bucket is refilled and spent in place, and housekeeping deletes buckets that are full again
-- so that no pseudonymised client address is kept longer than its throttling needs.
CREATE UNLOGGED TABLE kaoping_rate_buckets (
    bucket text PRIMARY KEY,        -- HMAC of limiter name and key (never an address in clear)
    tokens double precision NOT NULL,
    at double precision NOT NULL,   -- epoch seconds of the last check (the server's clock)
    granted boolean NOT NULL,       -- whether the last check was granted
    rate double precision NOT NULL, -- tokens a second (for housekeeping's "full again")
    burst double precision NOT NULL
);

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON kaoping_rate_buckets TO %I', app);
END $$;
