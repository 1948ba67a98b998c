"""The small runtime kit every service is built on: settings, app factory, MongoDB access,
transactional outbox and relay, idempotent consumer, idempotency keys, telemetry, errors."""
