-- 007: bearer tokens of the usage HTTP API (meter-api).
--
-- A token is "mtk_" followed by 43 base64url characters (32 random bytes).
-- Only its SHA-256 (hex) is stored: the token itself is printed once by
-- `meterctl token create` and cannot be recovered. meter-api finds a token
-- by its hash, so nothing is ever compared byte by byte against a secret.
-- tenant_id NULL: an operator token (every tenant); otherwise the token
-- reads that tenant only. Revoked tokens stay (audit) with revoked_at set.

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    prefix       text NOT NULL,  -- the first characters, to recognise a token in a list
    tenant_id    text REFERENCES tenants(id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id);
