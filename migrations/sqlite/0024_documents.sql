-- See postgres/0024: documents by SHA-256, written once, never changed or removed.
CREATE TABLE kaoping_documents (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    content BLOB NOT NULL,
    stored_at TEXT NOT NULL
);
CREATE TRIGGER kaoping_documents_no_update BEFORE UPDATE ON kaoping_documents
BEGIN SELECT RAISE(ABORT, 'kaoping_documents is append-only: UPDATE refused'); END;
CREATE TRIGGER kaoping_documents_no_delete BEFORE DELETE ON kaoping_documents
BEGIN SELECT RAISE(ABORT, 'kaoping_documents is append-only: DELETE refused'); END;
