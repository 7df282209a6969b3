-- trafficlab consumer schema, version 1.
--
-- Only SQL that both MariaDB 10.11 and MySQL 8 accept (store_test.go scans
-- this file for dialect-only syntax). Times are UTC DATETIMEs; the
-- connection's time_zone is +00:00. Statements end with ";" at the end of a
-- line: the migrator splits them there.

-- One row per minute and backend. Counters are exact; the *_hll, *_sketch
-- and top_* columns are mergeable sketches that the consumer merges in Go
-- when late lines or another partition's lines land in an existing minute.
-- visitors and rt_p* are their current readings, for plain SQL queries.
CREATE TABLE IF NOT EXISTS traffic_minute (
    minute          DATETIME        NOT NULL,
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
    visitors        BIGINT UNSIGNED NOT NULL,
    rt_p50          DOUBLE          NULL,
    rt_p95          DOUBLE          NULL,
    rt_p99          DOUBLE          NULL,
    visitors_hll    BLOB            NOT NULL,
    latency_sketch  BLOB            NOT NULL,
    top_uris        MEDIUMTEXT      NOT NULL,
    top_clients     MEDIUMTEXT      NOT NULL,
    updated_at      DATETIME(3)     NOT NULL,
    PRIMARY KEY (minute, backend),
    KEY traffic_minute_backend (backend, minute)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- 5-minute bandwidth samples for 95th-percentile billing, kept at least 13
-- months. Bytes are stored (exact, additive); bit/s = bytes * 8 / 300.
CREATE TABLE IF NOT EXISTS bandwidth_5m (
    bucket      DATETIME        NOT NULL,
    backend     VARCHAR(255)    NOT NULL,
    bytes_out   BIGINT UNSIGNED NOT NULL,
    bytes_in    BIGINT UNSIGNED NOT NULL,
    requests    BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (bucket, backend)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per probe id (requests under /__trafficlab/probe/<id>):
-- first_seen is the request's own time, stored_at when the consumer first
-- committed it, so verify can measure the path's latency.
CREATE TABLE IF NOT EXISTS probes (
    probe_id        VARCHAR(64)     NOT NULL,
    first_seen      DATETIME        NOT NULL,
    last_seen       DATETIME        NOT NULL,
    backend         VARCHAR(255)    NOT NULL,
    request_count   BIGINT UNSIGNED NOT NULL,
    stored_at       DATETIME(3)     NOT NULL,
    PRIMARY KEY (probe_id),
    KEY probes_first_seen (first_seen)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The next Kafka offset to consume per partition, written in the same
-- transaction as the aggregates of the lines before it: the consumer's only
-- record of its position (nothing is committed to Kafka).
CREATE TABLE IF NOT EXISTS kafka_offsets (
    consumer_group  VARCHAR(255)    NOT NULL,
    topic           VARCHAR(255)    NOT NULL,
    kafka_partition INT             NOT NULL,
    next_offset     BIGINT          NOT NULL,
    updated_at      DATETIME(3)     NOT NULL,
    PRIMARY KEY (consumer_group, topic, kafka_partition)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Rejected lines per minute of consumption and kind.
CREATE TABLE IF NOT EXISTS rejects_minute (
    minute      DATETIME        NOT NULL,
    kind        VARCHAR(16)     NOT NULL,
    line_count  BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (minute, kind)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The latest rejected inputs, trimmed to a configured count.
CREATE TABLE IF NOT EXISTS reject_samples (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    seen_at     DATETIME(3)     NOT NULL,
    kind        VARCHAR(16)     NOT NULL,
    reason      VARCHAR(512)    NOT NULL,
    input       VARBINARY(2048) NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
