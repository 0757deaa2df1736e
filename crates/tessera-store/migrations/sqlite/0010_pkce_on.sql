-- PKCE S256 is on for every OAuth integration unless a registration turns it
-- off. Before, it was off by default for integrations registered without a
-- template (and for the notion and slack templates), and the stored settings
-- always hold the field: a stored `"pkce": false` cannot tell that old default
-- from a registration that asked for it. Fail closed: turn PKCE on for every
-- stored integration that has it off. A provider that rejects PKCE needs its
-- integration registered again with `"oauth": {"pkce": false}` (README).
UPDATE integrations
SET settings = json_set(settings, '$.oauth.pkce', json('true'))
WHERE json_type(settings, '$.oauth.pkce') = 'false';
