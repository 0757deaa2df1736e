-- How often each connection was used (resolved reads, proxy calls, tool
-- calls), per hour: the console's usage chart. Counted in memory and added
-- here every minute by each replica (a write per call would cost more than
-- the call), so the last minute of counts is lost if a process is killed.
CREATE TABLE usage_hourly (
    tenant_id       TEXT NOT NULL,
    integration_key TEXT NOT NULL,
    kind            TEXT NOT NULL,
    hour            BIGINT NOT NULL,
    count           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, integration_key, kind, hour)
);
CREATE INDEX usage_by_hour ON usage_hourly (hour);
