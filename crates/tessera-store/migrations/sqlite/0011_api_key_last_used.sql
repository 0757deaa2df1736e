-- When each API key was last accepted (written at most once a minute per key
-- and replica), for the console's API keys page.
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
