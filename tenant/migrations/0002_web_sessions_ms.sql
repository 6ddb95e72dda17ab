-- Browser sessions expire at a Unix millisecond time, like every other
-- time here (they held SQLite julian days, which only SQLite computes).
CREATE TABLE web_sessions_ms (
    token  TEXT PRIMARY KEY,
    data   BLOB NOT NULL,
    expiry INTEGER NOT NULL
);
INSERT INTO web_sessions_ms (token, data, expiry)
    SELECT token, data, CAST(ROUND((expiry - 2440587.5) * 86400000) AS INTEGER) FROM web_sessions;
DROP TABLE web_sessions;
ALTER TABLE web_sessions_ms RENAME TO web_sessions;
CREATE INDEX web_sessions_expiry ON web_sessions(expiry);
