-- See postgres/0026.
CREATE TABLE kaoping_console_signouts (
    session_id TEXT PRIMARY KEY,
    expires INTEGER NOT NULL,
    signed_out_at TEXT NOT NULL
);
CREATE TRIGGER kaoping_console_signouts_no_update BEFORE UPDATE ON kaoping_console_signouts
BEGIN SELECT RAISE(ABORT, 'kaoping_console_signouts is append-only: UPDATE refused'); END;
CREATE TRIGGER kaoping_console_signouts_no_delete BEFORE DELETE ON kaoping_console_signouts
BEGIN SELECT RAISE(ABORT, 'kaoping_console_signouts is append-only: DELETE refused'); END;
