-- The last acknowledge/resolve seen per incident, by incident version. A timer asked for at an earlier
-- version is stored already cancelled, whichever of the two events the scheduler happens to read first.
CREATE TABLE IF NOT EXISTS scheduler_incident_marks (
    incident_id text PRIMARY KEY,
    version     int  NOT NULL
);
ALTER TABLE scheduler_timers ADD COLUMN IF NOT EXISTS incident_version int NOT NULL DEFAULT 0;
