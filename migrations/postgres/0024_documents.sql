-- Documents (工作总结, 述职述廉报告, 自我评价) by content: the bytes of each distinct document,
-- keyed by their SHA-256, written once in the same transaction as the SubjectFile event that
-- names the hash (domain/documents.py). Append-only like the log: a document is never changed
-- or removed; the app role may only INSERT and SELECT.
CREATE TABLE kaoping_documents (
    sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size bigint NOT NULL CHECK (size >= 0),
    media_type text NOT NULL,
    content bytea NOT NULL,
    stored_at text NOT NULL,
    CHECK (octet_length(content) = size)
);
CREATE TRIGGER kaoping_documents_append_only BEFORE UPDATE OR DELETE ON kaoping_documents
    FOR EACH ROW EXECUTE FUNCTION kaoping_refuse_change();
CREATE TRIGGER kaoping_documents_no_truncate BEFORE TRUNCATE ON kaoping_documents
    FOR EACH STATEMENT EXECUTE FUNCTION kaoping_refuse_change();

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('REVOKE ALL ON kaoping_documents FROM PUBLIC');
    EXECUTE format('GRANT SELECT, INSERT ON kaoping_documents TO %I', app);
END $$;
