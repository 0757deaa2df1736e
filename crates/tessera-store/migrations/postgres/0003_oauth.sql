-- OAuth: per-integration settings (oauth, later proxy/mcp/healthCheck; no
-- secret: the client secret lives encrypted in the secret store), OAuth
-- credentials of connections (token values live encrypted in the secret
-- store; this row is their metadata and the refresh schedule), and the
-- server-side state of authorization flows.
ALTER TABLE integrations ADD COLUMN settings JSONB NOT NULL DEFAULT '{}';

CREATE TABLE credentials (
    tenant_id         TEXT NOT NULL,
    integration_key   TEXT NOT NULL,
    token_type        TEXT NOT NULL,
    scopes            JSONB NOT NULL,
    has_refresh_token BIGINT NOT NULL CHECK (has_refresh_token IN (0, 1)),
    expires_at        BIGINT,
    source            TEXT NOT NULL CHECK (source IN ('api', 'oauth', 'apply')),
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    last_refreshed_at BIGINT,
    -- Refresh schedule: failures so far, no retry before next_attempt_at,
    -- needs_reauth after a permanent refusal (invalid_grant), and the lease
    -- a replica holds while it refreshes (so no token is refreshed twice).
    refresh_failures  BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT,
    needs_reauth      BIGINT NOT NULL DEFAULT 0 CHECK (needs_reauth IN (0, 1)),
    lease_owner       TEXT,
    lease_until       BIGINT,
    PRIMARY KEY (tenant_id, integration_key),
    FOREIGN KEY (tenant_id, integration_key) REFERENCES connections (tenant_id, integration_key) ON DELETE CASCADE
);
-- The refresh worker's scan: refreshable tokens by expiry.
CREATE INDEX credentials_due ON credentials (expires_at) WHERE has_refresh_token = 1 AND needs_reauth = 0;

-- One row per authorization flow in progress; the state itself is never
-- stored, only its SHA-256. Single use: the callback deletes the row.
CREATE TABLE oauth_states (
    state_hash        TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    integration_key   TEXT NOT NULL REFERENCES integrations(integration_key) ON DELETE CASCADE,
    redirect_uri      TEXT,
    callback_uri      TEXT NOT NULL,
    code_verifier     TEXT,
    created_by        TEXT NOT NULL,
    created_role      TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL
);
CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at);
