CREATE TABLE IF NOT EXISTS scheduler_timers (
    id          text PRIMARY KEY,
    kind        text NOT NULL,
    incident_id text NOT NULL,
    step        int  NOT NULL DEFAULT 0,
    repeat      int  NOT NULL DEFAULT 0,
    due_at      timestamptz NOT NULL,
    payload     bytea,
    traceparent text NOT NULL DEFAULT '',
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'fired', 'cancelled')),
    fired_at    timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS scheduler_timers_due ON scheduler_timers (due_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS scheduler_timers_incident ON scheduler_timers (incident_id) WHERE state = 'pending';
