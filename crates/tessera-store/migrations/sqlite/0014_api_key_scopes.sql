-- A scoped API key may do only what its scopes allow:
-- [{"secrets": "stripe/*", "access": "read"}, {"integration": "notion", "access": "write"}].
-- NULL: an unscoped key (its role's rules alone). Set at creation, never widened.
ALTER TABLE api_keys ADD COLUMN scopes TEXT CHECK (scopes IS NULL OR json_valid(scopes));
