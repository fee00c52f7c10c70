-- A pending Idempotency-Key is a lease (service/idempotency.py): who holds it (a random token
-- the completing transaction must match) and until when. After a crash the lease runs out and
-- a retry takes the key over. Rows from before this migration have none: taken over at once.
ALTER TABLE kaoping_idempotency ADD COLUMN lease_token TEXT;
ALTER TABLE kaoping_idempotency ADD COLUMN lease_until TEXT;
