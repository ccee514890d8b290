-- Written by the API itself (not projections): tokens and the applied config revisions.
CREATE TABLE IF NOT EXISTS api_tokens (
    id           text PRIMARY KEY,
    user_name    text NOT NULL,
    name         text NOT NULL DEFAULT '',
    token_sha256 text NOT NULL UNIQUE,
    scopes       text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE IF NOT EXISTS api_config_revisions (
    revision   bigserial PRIMARY KEY,
    document   jsonb NOT NULL,
    applied_by text NOT NULL DEFAULT '',
    applied_at timestamptz NOT NULL DEFAULT now()
);
