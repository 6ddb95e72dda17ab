-- Rate-limit windows shared by every instance on one database (PostgreSQL):
-- one row per limit and key (an API key, a tenant, a phone number, a
-- client network), counting hits in the window that began at
-- window_start (Unix ms). A single instance counts in memory instead.
CREATE TABLE rate_limits (
    bucket       TEXT NOT NULL,
    key          TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    hits         INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX rate_limits_window ON rate_limits(window_start);
