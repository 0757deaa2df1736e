-- Webhooks: subscriptions of a tenant (the signing secret lives only as
-- ciphertext under the tenant's data key), an outbox written in the same
-- transaction as the change it reports (metadata only, never a secret value
-- or token), and a log of every delivery attempt. Plus the rotation policy
-- of tenant secrets (seed 002's "Secret Rotation Automation").
CREATE TABLE webhooks (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url               TEXT NOT NULL,
    events            JSONB NOT NULL,
    secret_ciphertext TEXT NOT NULL,
    enabled           BIGINT NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at        BIGINT NOT NULL,
    created_by        TEXT NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id);

-- One row per (event, webhook); the delivery worker claims due rows with a
-- lease, so replicas never send one twice at once.
CREATE TABLE webhook_outbox (
    id                TEXT PRIMARY KEY,
    webhook_id        TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    tenant_id         TEXT NOT NULL,
    event             TEXT NOT NULL,
    payload           JSONB NOT NULL,
    created_at        BIGINT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    lease_owner       TEXT,
    lease_until       BIGINT,
    delivered_at      BIGINT,
    failed_at         BIGINT
);
-- The delivery worker's scan: pending rows by due time.
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;

CREATE TABLE webhook_deliveries (
    id                BIGSERIAL PRIMARY KEY,
    outbox_id         TEXT NOT NULL REFERENCES webhook_outbox(id) ON DELETE CASCADE,
    webhook_id        TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    attempt           BIGINT NOT NULL,
    at                BIGINT NOT NULL,
    status_code       BIGINT,
    error             TEXT,
    duration_ms       BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, at);

-- Rotation policy: a secret not written for rotate_after_days is due; one
-- `secret.rotation_due` event per write (each write clears rotation_notified_at).
ALTER TABLE secrets ADD COLUMN rotate_after_days BIGINT CHECK (rotate_after_days > 0);
ALTER TABLE secrets ADD COLUMN rotation_notified_at BIGINT;
