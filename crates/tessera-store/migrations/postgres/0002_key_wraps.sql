-- Extra wraps of a data key under other key-encryption keys: while the
-- master key rotates, servers still on the old key find the old wrap here.
CREATE TABLE data_key_wraps (
    tenant_id   TEXT NOT NULL,
    version     BIGINT NOT NULL,
    kek_id      TEXT NOT NULL,
    wrapped     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, version, kek_id),
    FOREIGN KEY (tenant_id, version) REFERENCES data_keys (tenant_id, version) ON DELETE CASCADE
);
