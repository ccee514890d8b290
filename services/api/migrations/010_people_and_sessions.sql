-- People, sign-in, tokens and the audit read model. Written by the API itself, except api_audit, which the
-- projector builds from the AUDIT stream (disposable like the other read models).
-- Numbered 010 so that it never takes a version number another branch uses for the read models.

-- People who exist only in the database (made by `tocsin user create-admin`, or signed in through OIDC
-- before anyone put them in the config). Config users are merged with these by name; see users.py.
CREATE TABLE IF NOT EXISTS api_users (
    username   text PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    email      text NOT NULL DEFAULT '',
    role       text NOT NULL DEFAULT 'user',
    created_by text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- argon2id hashes (the encoded form carries its own salt and parameters).
CREATE TABLE IF NOT EXISTS api_passwords (
    username   text PRIMARY KEY,
    hash       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A session is known by an HMAC of its id under a key derived from the installation key: a copy of this
-- table does not let anyone sign in.
CREATE TABLE IF NOT EXISTS api_sessions (
    id_hmac      text PRIMARY KEY,
    user_name    text NOT NULL,
    via          text NOT NULL DEFAULT 'password',
    address      text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS api_sessions_user ON api_sessions (user_name);

-- Failed sign-ins, for rate limiting by username and by address; old rows are pruned as new ones come.
CREATE TABLE IF NOT EXISTS api_login_failures (
    at        timestamptz NOT NULL DEFAULT now(),
    user_name text NOT NULL,
    address   text NOT NULL
);
CREATE INDEX IF NOT EXISTS api_login_failures_user ON api_login_failures (user_name, at);
CREATE INDEX IF NOT EXISTS api_login_failures_address ON api_login_failures (address, at);

-- Calendar feeds: a secret URL per person (their shifts) or per team (the team's shifts).
CREATE TABLE IF NOT EXISTS api_feeds (
    id           text PRIMARY KEY,
    user_name    text NOT NULL,
    team         text NOT NULL DEFAULT '',
    token_sha256 text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- The audit trail, projected from the AUDIT stream.
CREATE TABLE IF NOT EXISTS api_audit (
    id      text PRIMARY KEY,
    seq     bigint NOT NULL,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL DEFAULT '',
    team    text NOT NULL DEFAULT '',
    via     text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS api_audit_seq ON api_audit (seq DESC);
CREATE INDEX IF NOT EXISTS api_audit_actor ON api_audit (actor, seq DESC);
CREATE INDEX IF NOT EXISTS api_audit_action ON api_audit (action, seq DESC);
