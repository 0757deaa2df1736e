-- The audit chain is keyed: from seq `audit_keyed_from` on, each event's hash
-- is an HMAC-SHA256 under the audit key, so that whoever can write the
-- database cannot rewrite events and recompute the chain. The key is random,
-- wrapped by the key-encryption key like a data key (its wrap binds
-- `audit_keyed_from`, so the start of the keyed chain cannot be moved either).
-- Events before it keep their plain SHA-256 hashes.
ALTER TABLE keyring_meta ADD COLUMN audit_key TEXT;
ALTER TABLE keyring_meta ADD COLUMN audit_keyed_from BIGINT;
