-- Sign-in sessions of the web console. Only the SHA-256 of a session token is
-- stored. A session opened with an API key goes with the key (revoking the
-- key, or deleting its tenant, ends it); a root-token session (key_id NULL)
-- records the root token's fingerprint, so changing the root token ends it.
CREATE TABLE console_sessions (
    id_hash          TEXT PRIMARY KEY,
    key_id           TEXT REFERENCES api_keys(id) ON DELETE CASCADE,
    root_fingerprint TEXT,
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX console_sessions_key ON console_sessions (key_id);
