-- See postgres/0017.
ALTER TABLE kaoping_idempotency ADD COLUMN extra BLOB;
