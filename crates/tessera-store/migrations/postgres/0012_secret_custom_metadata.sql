-- KV v2's custom metadata of a secret (the Vault-compatible API's
-- metadata/<path>): a JSON object of string keys and values. Metadata, not a
-- secret value (Vault keeps it in the clear too); none when never set.
ALTER TABLE secrets ADD COLUMN custom_metadata TEXT;
