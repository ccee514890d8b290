-- Heartbeat hosts as the scheduler knows them: liveness (overdue detection) and metric levels (renotify).
-- The state survives restarts and is shared by every scheduler replica.
CREATE TABLE IF NOT EXISTS scheduler_hosts (
    host             text PRIMARY KEY,
    status           text NOT NULL DEFAULT 'up' CHECK (status IN ('up', 'overdue', 'down')),
    last_seen        timestamptz,          -- the scheduler's clock when it read the last beat
    last_received_at timestamptz,          -- the intake's clock on that beat (older beats are skipped)
    overdue_at       timestamptz,          -- last_seen + overdue_after, while up
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS scheduler_hosts_overdue ON scheduler_hosts (overdue_at) WHERE status = 'up';

CREATE TABLE IF NOT EXISTS scheduler_host_metrics (
    host        text NOT NULL,
    metric      text NOT NULL,
    level       text NOT NULL CHECK (level IN ('OK', 'WARNING', 'CRITICAL')),
    value       double precision NOT NULL,
    since       timestamptz,               -- when it reached this level
    renotify_at timestamptz,               -- next re-notification while not OK
    renotified  int NOT NULL DEFAULT 0,
    PRIMARY KEY (host, metric)
);
CREATE INDEX IF NOT EXISTS scheduler_host_metrics_renotify ON scheduler_host_metrics (renotify_at)
    WHERE level <> 'OK';

-- The silence an `unsilence` timer waits for, so that expiring it early brings the timer forward.
ALTER TABLE scheduler_timers ADD COLUMN IF NOT EXISTS silence_id text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS scheduler_timers_silence ON scheduler_timers (silence_id)
    WHERE state = 'pending' AND kind = 'unsilence';
