-- Read models built by the projector from the streams. Disposable: `tocsin projections rebuild`.
CREATE TABLE IF NOT EXISTS api_projection_offsets (
    stream   text PRIMARY KEY,
    last_seq bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS api_incidents (
    id              text PRIMARY KEY,
    number          int NOT NULL,
    status          text NOT NULL,
    title           text NOT NULL,
    severity        text NOT NULL,
    team            text NOT NULL,
    route           text NOT NULL,
    source          text NOT NULL,
    dedup_key       text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at     timestamptz,
    resolved_by     text,
    alert_count     int NOT NULL,
    version         int NOT NULL,
    state           jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS api_incidents_listing ON api_incidents (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS api_incidents_status ON api_incidents (status, created_at DESC);
CREATE INDEX IF NOT EXISTS api_incidents_number ON api_incidents (number);

CREATE TABLE IF NOT EXISTS api_incident_events (
    incident_id text NOT NULL,
    seq         bigint NOT NULL,
    version     int NOT NULL,
    type        text NOT NULL,
    at          timestamptz NOT NULL,
    body        jsonb NOT NULL,
    PRIMARY KEY (incident_id, seq)
);

CREATE TABLE IF NOT EXISTS api_deliveries (
    notification_id text PRIMARY KEY,
    incident_id     text NOT NULL,
    channel_kind    text NOT NULL,
    channel         text NOT NULL,
    user_name       text NOT NULL DEFAULT '',
    status          text NOT NULL,
    attempts        int NOT NULL DEFAULT 0,
    provider_id     text NOT NULL DEFAULT '',
    error           text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS api_deliveries_incident ON api_deliveries (incident_id);

CREATE TABLE IF NOT EXISTS api_alerts (
    id          text PRIMARY KEY,
    source      text NOT NULL,
    route       text NOT NULL,
    dedup_key   text NOT NULL,
    status      text NOT NULL,
    severity    text NOT NULL,
    title       text NOT NULL,
    received_at timestamptz NOT NULL,
    body        jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS api_alerts_dedup ON api_alerts (route, dedup_key);
