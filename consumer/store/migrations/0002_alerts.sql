-- trafficlab consumer schema, version 2: alerts and their notices.
-- Same dialect rules as 0001_init.sql.

-- One row per alert life: it fires (state firing, ended_at NULL) and later
-- resolves (state resolved, ended_at set). open_key is rule/scope while it
-- fires and NULL after: the unique key lets one alert per rule and scope be
-- firing at a time, whoever evaluates. scope is a backend, '' the total.
-- value and baseline are the figures that fired it; last_value, the
-- latest reading while it fires or the one that resolved it.
CREATE TABLE IF NOT EXISTS alerts (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    rule            VARCHAR(32)     NOT NULL,
    scope           VARCHAR(255)    NOT NULL,
    state           VARCHAR(16)     NOT NULL,
    open_key        VARCHAR(300)    NULL,
    started_at      DATETIME        NOT NULL,
    ended_at        DATETIME        NULL,
    value           DOUBLE          NOT NULL,
    baseline        DOUBLE          NOT NULL,
    last_value      DOUBLE          NOT NULL,
    updated_at      DATETIME(3)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY alerts_open_key (open_key),
    KEY alerts_started (started_at),
    KEY alerts_ended (ended_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The notices sent per alert, channel (webhook, email) and kind (firing,
-- resolved): what de-duplicates delivery and times the repeats.
CREATE TABLE IF NOT EXISTS alert_notices (
    alert_id        BIGINT UNSIGNED NOT NULL,
    channel         VARCHAR(16)     NOT NULL,
    kind            VARCHAR(16)     NOT NULL,
    sent_at         DATETIME(3)     NOT NULL,
    sent_count      INT             NOT NULL,
    PRIMARY KEY (alert_id, channel, kind)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Lease of the alert evaluator: one row; the consumer holding an unexpired
-- lease evaluates, the others wait. A GET_LOCK would do on one server, but
-- a lease also survives a proxy that pools sessions.
CREATE TABLE IF NOT EXISTS alert_lease (
    name            VARCHAR(32)     NOT NULL,
    holder          VARCHAR(255)    NOT NULL,
    expires_at      DATETIME(3)     NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
