-- Tessera metadata store, SQLite dialect. Times are microseconds since the epoch.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  INTEGER NOT NULL
);

CREATE TABLE keyring_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    kek_id      TEXT NOT NULL,
    kek_check   TEXT NOT NULL
);

-- Deleting a tenant deletes its data keys: its ciphertext becomes unreadable everywhere.
CREATE TABLE data_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL CHECK (version > 0),
    wrapped     TEXT NOT NULL,
    kek_id      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE integrations (
    integration_key TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    category        TEXT,
    auth_type       TEXT NOT NULL CHECK (auth_type IN ('none', 'api_key', 'basic', 'oauth2')),
    config_schema   TEXT NOT NULL CHECK (json_valid(config_schema)),
    defaults        TEXT NOT NULL CHECK (json_valid(defaults)),
    defaults_meta   TEXT NOT NULL CHECK (json_valid(defaults_meta)),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE connections (
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    integration_key   TEXT NOT NULL REFERENCES integrations(integration_key) ON DELETE CASCADE,
    config            TEXT NOT NULL CHECK (json_valid(config)),
    config_meta       TEXT NOT NULL CHECK (json_valid(config_meta)),
    is_enabled        INTEGER NOT NULL CHECK (is_enabled IN (0, 1)),
    health_status     TEXT CHECK (health_status IN ('healthy', 'degraded', 'unhealthy')),
    last_health_check INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    last_used_at      INTEGER,
    PRIMARY KEY (tenant_id, integration_key)
);
CREATE INDEX connections_by_integration ON connections (integration_key);

CREATE TABLE secrets (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    path            TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    max_versions    INTEGER NOT NULL CHECK (max_versions > 0),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, path)
);

CREATE TABLE secret_versions (
    tenant_id   TEXT NOT NULL,
    path        TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK (version > 0),
    kind        TEXT NOT NULL CHECK (kind IN ('value', 'data')),
    ciphertext  TEXT,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    deleted_at  INTEGER,
    PRIMARY KEY (tenant_id, path, version),
    FOREIGN KEY (tenant_id, path) REFERENCES secrets (tenant_id, path) ON DELETE CASCADE
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'tenant_admin', 'tenant_service', 'auditor')),
    tenant_id   TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL
);

-- Audit rows outlive the tenants they mention: no foreign key on tenant_id.
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    at          INTEGER NOT NULL,
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
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
