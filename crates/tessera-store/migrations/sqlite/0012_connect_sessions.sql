-- Hosted Connect: short-lived sessions in which a tenant's own users connect
-- their accounts on Tessera's connect page. The session token is the page's
-- capability and is never stored: only its SHA-256. `integrations` is the
-- allow-list (NULL: every integration), `connected` the integrations
-- connected so far ([{"integration", "at"}]). Deleting the tenant ends its
-- sessions.
CREATE TABLE connect_sessions (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    integrations TEXT CHECK (integrations IS NULL OR json_valid(integrations)),
    redirect_uri TEXT,
    end_user     TEXT CHECK (end_user IS NULL OR json_valid(end_user)),
    status       TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'expired', 'failed')),
    connected    TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(connected)),
    created_by   TEXT NOT NULL,
    created_role TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT
);
-- The expiry sweep: pending sessions by expiry.
CREATE INDEX connect_sessions_pending ON connect_sessions (expires_at) WHERE status = 'pending';
CREATE INDEX connect_sessions_tenant ON connect_sessions (tenant_id);

-- An authorization flow started from a connect page names its session, and
-- keeps the page's token encrypted (like its PKCE verifier) until the
-- provider's return consumes the flow, so the person lands back on the page.
ALTER TABLE oauth_states ADD COLUMN connect_session_id TEXT;
ALTER TABLE oauth_states ADD COLUMN connect_token TEXT;

-- Who connected a connection through a connect session:
-- {"sessionId", "endUser": {"id", "email", "displayName"}, "at"}.
ALTER TABLE connections ADD COLUMN connected_by TEXT CHECK (connected_by IS NULL OR json_valid(connected_by));
