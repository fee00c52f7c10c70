-- See postgres/0005.
CREATE TABLE rm_cadres (
    cadre_id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    unit_code TEXT NOT NULL,
    role TEXT NOT NULL,
    since TEXT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX rm_cadres_unit ON rm_cadres (unit_code);
