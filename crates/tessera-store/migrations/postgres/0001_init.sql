-- Tessera metadata store, PostgreSQL dialect. Times are microseconds since the epoch.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  BIGINT NOT NULL
);

CREATE TABLE keyring_meta (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    kek_id      TEXT NOT NULL,
    kek_check   TEXT NOT NULL
);

-- Deleting a tenant deletes its data keys: its ciphertext becomes unreadable everywhere.
CREATE TABLE data_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version     BIGINT NOT NULL CHECK (version > 0),
    wrapped     TEXT NOT NULL,
    kek_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE integrations (
    integration_key TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    category        TEXT,
    auth_type       TEXT NOT NULL CHECK (auth_type IN ('none', 'api_key', 'basic', 'oauth2')),
    config_schema   JSONB NOT NULL,
    defaults        JSONB NOT NULL,
    defaults_meta   JSONB NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE connections (
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    integration_key   TEXT NOT NULL REFERENCES integrations(integration_key) ON DELETE CASCADE,
    config            JSONB NOT NULL,
    config_meta       JSONB NOT NULL,
    is_enabled        BIGINT NOT NULL CHECK (is_enabled IN (0, 1)),
    health_status     TEXT CHECK (health_status IN ('healthy', 'degraded', 'unhealthy')),
    last_health_check BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    last_used_at      BIGINT,
    PRIMARY KEY (tenant_id, integration_key)
);
CREATE INDEX connections_by_integration ON connections (integration_key);
-- Queryable public config (seed 000): containment queries use this index.
CREATE INDEX connections_config_gin ON connections USING GIN (config jsonb_path_ops);

CREATE TABLE secrets (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    path            TEXT NOT NULL,
    current_version BIGINT NOT NULL,
    max_versions    BIGINT NOT NULL CHECK (max_versions > 0),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, path)
);

CREATE TABLE secret_versions (
    tenant_id   TEXT NOT NULL,
    path        TEXT NOT NULL,
    version     BIGINT NOT NULL CHECK (version > 0),
    kind        TEXT NOT NULL CHECK (kind IN ('value', 'data')),
    ciphertext  TEXT,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    deleted_at  BIGINT,
    PRIMARY KEY (tenant_id, path, version),
    FOREIGN KEY (tenant_id, path) REFERENCES secrets (tenant_id, path) ON DELETE CASCADE
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'tenant_admin', 'tenant_service', 'auditor')),
    tenant_id   TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL
);

-- Audit rows outlive the tenants they mention: no foreign key on tenant_id.
CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    actor_role  TEXT NOT NULL,
    tenant_id   TEXT,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    request_id  TEXT,
    client_ip   TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_by_tenant ON audit_events (tenant_id, seq);
CREATE INDEX audit_by_at ON audit_events (at);

CREATE TABLE audit_head (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
