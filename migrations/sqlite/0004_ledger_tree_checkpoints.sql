-- See postgres/0004.
CREATE TABLE kaoping_tree_nodes (
    level INTEGER NOT NULL CHECK (level >= 1 AND level < 64),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TABLE kaoping_checkpoints (
    size INTEGER PRIMARY KEY CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    note BLOB NOT NULL,
    key_id TEXT NOT NULL,
    signed_at TEXT NOT NULL
);

CREATE TRIGGER kaoping_tree_nodes_no_update BEFORE UPDATE ON kaoping_tree_nodes
BEGIN SELECT RAISE(ABORT, 'kaoping_tree_nodes is append-only: UPDATE refused'); END;
CREATE TRIGGER kaoping_tree_nodes_no_delete BEFORE DELETE ON kaoping_tree_nodes
BEGIN SELECT RAISE(ABORT, 'kaoping_tree_nodes is append-only: DELETE refused'); END;
CREATE TRIGGER kaoping_checkpoints_no_update BEFORE UPDATE ON kaoping_checkpoints
BEGIN SELECT RAISE(ABORT, 'kaoping_checkpoints is append-only: UPDATE refused'); END;
CREATE TRIGGER kaoping_checkpoints_no_delete BEFORE DELETE ON kaoping_checkpoints
BEGIN SELECT RAISE(ABORT, 'kaoping_checkpoints is append-only: DELETE refused'); END;
