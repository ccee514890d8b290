-- An acknowledgement cancels escalation and delayed-contact timers; a resolve cancels every timer,
-- reminders included. Keep the two versions apart.
ALTER TABLE scheduler_incident_marks ADD COLUMN IF NOT EXISTS resolved_version int NOT NULL DEFAULT 0;
