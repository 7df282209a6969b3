-- trafficlab consumer schema, version 4: top lists per hour and per day,
-- and counters per hour.
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

-- The exact counters of traffic_minute summed per hour and backend, kept
-- in the same transaction: an overview of weeks (buckets of an hour or
-- more) sums a few thousand of these instead of a quarter million minutes.
CREATE TABLE IF NOT EXISTS traffic_hour (
    hour            DATETIME        NOT NULL,
    backend         VARCHAR(255)    NOT NULL,
    requests        BIGINT UNSIGNED NOT NULL,
    bytes_out       BIGINT UNSIGNED NOT NULL,
    bytes_in        BIGINT UNSIGNED NOT NULL,
    status_1xx      BIGINT UNSIGNED NOT NULL,
    status_2xx      BIGINT UNSIGNED NOT NULL,
    status_3xx      BIGINT UNSIGNED NOT NULL,
    status_4xx      BIGINT UNSIGNED NOT NULL,
    status_5xx      BIGINT UNSIGNED NOT NULL,
    status_other    BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (hour, backend)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
