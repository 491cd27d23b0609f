-- Intake facts the gateway stamps on each accepted event.
-- is_late: the event arrived more than LMS_EVENTS_LATE_AFTER_S after it
-- happened (offline clients syncing); flagged, never dropped, so rollups
-- can tell backfilled days from live ones.
-- client_ip: already truncated by the gateway (IPv4 /24, IPv6 /48); empty
-- for users under COPPA protection.
ALTER TABLE events ADD COLUMN IF NOT EXISTS is_late Bool DEFAULT false AFTER received_at;
ALTER TABLE events ADD COLUMN IF NOT EXISTS client_ip String DEFAULT '' AFTER is_late;
