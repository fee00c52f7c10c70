-- See postgres/0016.
ALTER TABLE kaoping_projection_tracking ADD COLUMN error TEXT;
