-- Audit streaming (TESSERA_AUDIT_SINKS): one row per sink, keyed by the
-- sink's name. `position` is the seq of the last audit event the sink
-- confirmed; its worker delivers the events after it, so a restart resumes
-- there. One replica delivers to a sink at a time: the holder of its lease.
CREATE TABLE audit_sink_positions (
    sink         TEXT PRIMARY KEY,
    position     BIGINT NOT NULL DEFAULT 0 CHECK (position >= 0),
    lease_owner  TEXT,
    lease_until  BIGINT,
    updated_at   BIGINT NOT NULL
);
