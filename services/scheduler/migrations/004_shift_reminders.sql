-- One row per shift reminder sent, so that two schedulers (or one restarted) remind once.
CREATE TABLE IF NOT EXISTS scheduler_shift_reminders (
    key        text PRIMARY KEY,          -- team/rotation/user/shift start
    created_at timestamptz NOT NULL DEFAULT now()
);
