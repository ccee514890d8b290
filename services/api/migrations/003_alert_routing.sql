-- What the router did with each alert (ROUTING stream): "why was nobody paged?". A projection.
CREATE TABLE IF NOT EXISTS api_alert_routing (
    alert_id   text PRIMARY KEY,
    outcome    text NOT NULL,
    routed_at  timestamptz NOT NULL,
    body       jsonb NOT NULL
);
