-- The Merkle tree's perfect subtrees (level >= 1; level 0 is kaoping_ledger.leaf_hash) and the
-- signed checkpoints. Nodes are derived from the leaves and extended by the signer, in the same
-- transaction as the checkpoint they serve; both tables are append-only like the log.

CREATE TABLE kaoping_tree_nodes (
    level smallint NOT NULL CHECK (level >= 1 AND level < 64),
    idx bigint NOT NULL CHECK (idx >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TABLE kaoping_checkpoints (
    size bigint PRIMARY KEY CHECK (size >= 0),
    root bytea NOT NULL CHECK (length(root) = 32),
    note bytea NOT NULL,
    key_id text NOT NULL,
    signed_at timestamptz NOT NULL
);

CREATE TRIGGER kaoping_tree_nodes_append_only BEFORE UPDATE OR DELETE ON kaoping_tree_nodes
    FOR EACH ROW EXECUTE FUNCTION kaoping_refuse_change();
CREATE TRIGGER kaoping_tree_nodes_no_truncate BEFORE TRUNCATE ON kaoping_tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION kaoping_refuse_change();
CREATE TRIGGER kaoping_checkpoints_append_only BEFORE UPDATE OR DELETE ON kaoping_checkpoints
    FOR EACH ROW EXECUTE FUNCTION kaoping_refuse_change();
CREATE TRIGGER kaoping_checkpoints_no_truncate BEFORE TRUNCATE ON kaoping_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION kaoping_refuse_change();

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE 'REVOKE ALL ON kaoping_tree_nodes, kaoping_checkpoints FROM PUBLIC';
    EXECUTE format('GRANT SELECT, INSERT ON kaoping_tree_nodes, kaoping_checkpoints TO %I', app);
END $$;
