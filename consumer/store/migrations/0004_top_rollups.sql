-- trafficlab consumer schema, version 4: top lists per hour and per day.
-- Same dialect rules as 0001_init.sql.
--
-- The dashboard's top URIs and clients of a range merged every minute's
-- list: 62 days of 3 backends are 268,000 rows, gigabytes to read per
-- request. Per-hour and per-day summaries (space-saving, mergeable, at
-- most agg.TopRollupStored keys each) let a range be covered by its whole
-- days, whole hours and at most two hours of minutes: a few hundred rows
-- whatever its length. The consumer keeps them in the transaction of the
-- minutes they sum; period is 'h' (hour) or 'd' (UTC day).
CREATE TABLE IF NOT EXISTS traffic_top (
    period          CHAR(1)         NOT NULL,
    start           DATETIME        NOT NULL,
    backend         VARCHAR(255)    NOT NULL,
    top_uris        MEDIUMTEXT      NOT NULL,
    top_clients     MEDIUMTEXT      NOT NULL,
    updated_at      DATETIME(3)     NOT NULL,
    PRIMARY KEY (period, start, backend)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
