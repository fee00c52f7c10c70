-- What a replay needs that the events cannot give back: an anonymous reporter's follow-up
-- code is stored only as a hash in the case, so the first response's code is kept with the
-- Idempotency-Key (for its 24 h retention, to the same principal and key only).
ALTER TABLE kaoping_idempotency ADD COLUMN extra bytea;
