-- Leases on the shared rate limiter (service/throttle.py): one check takes up to a share of the
-- bucket, which the API process spends from memory for at most a second. The grant's size is
-- kept in the row because RETURNING sees only the new row (the tokens left), not what was taken.
-- Throttling state, not a record: the table stays UNLOGGED and outside append-only (0030).
ALTER TABLE kaoping_rate_buckets ADD COLUMN taken double precision NOT NULL DEFAULT 1;
