-- See postgres/0009.
CREATE TABLE rm_dirty_pools (
    year INTEGER NOT NULL,
    grp TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (year, grp, kind)
);
