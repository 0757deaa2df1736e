-- KV v2 version settings (the Vault-compatible API's metadata/<path> and
-- <mount>/config). Metadata, not secret values, as in Vault.
--
-- Per secret, beside its head row (and removed with it): kv_max_versions
-- (0: not set), kv_cas_required (0/1), kv_delete_version_after (seconds; 0:
-- not set). max_versions stays the number a write keeps, now worked out
-- from these, the mount's and TESSERA_MAX_VERSIONS. oldest_version is KV
-- v2's: 0 until a write first reached max_versions, then the oldest kept.
ALTER TABLE secrets ADD COLUMN kv_max_versions BIGINT NOT NULL DEFAULT 0 CHECK (kv_max_versions >= 0);
ALTER TABLE secrets ADD COLUMN kv_cas_required BIGINT NOT NULL DEFAULT 0 CHECK (kv_cas_required IN (0, 1));
ALTER TABLE secrets ADD COLUMN kv_delete_version_after BIGINT NOT NULL DEFAULT 0 CHECK (kv_delete_version_after >= 0);
ALTER TABLE secrets ADD COLUMN oldest_version BIGINT NOT NULL DEFAULT 0 CHECK (oldest_version >= 0);
-- Secrets that already reached max_versions had their oldest versions pruned.
UPDATE secrets SET oldest_version = COALESCE(
    (SELECT MIN(v.version) FROM secret_versions v WHERE v.tenant_id = secrets.tenant_id AND v.path = secrets.path), 0)
WHERE current_version >= max_versions;

-- A tenant's KV mount settings (<mount>/config), for every secret of the
-- tenant; removed with the tenant. delete_version_after < 0 turns it off.
CREATE TABLE kv_configs (
    tenant_id            TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    max_versions         BIGINT NOT NULL CHECK (max_versions >= 0),
    cas_required         BIGINT NOT NULL CHECK (cas_required IN (0, 1)),
    delete_version_after BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
