-- See postgres/0007.
CREATE TABLE kaoping_rebuild_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    checked_at TEXT NOT NULL,
    checkpoint_size INTEGER NOT NULL,
    checkpoint BLOB NOT NULL,
    ok INTEGER NOT NULL,
    report BLOB NOT NULL
);
CREATE TRIGGER kaoping_rebuild_checks_no_update BEFORE UPDATE ON kaoping_rebuild_checks
BEGIN SELECT RAISE(ABORT, 'kaoping_rebuild_checks is append-only: UPDATE refused'); END;
CREATE TRIGGER kaoping_rebuild_checks_no_delete BEFORE DELETE ON kaoping_rebuild_checks
BEGIN SELECT RAISE(ABORT, 'kaoping_rebuild_checks is append-only: DELETE refused'); END;
