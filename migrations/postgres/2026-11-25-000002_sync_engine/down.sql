DROP TABLE sync_events;
DROP TABLE teams;
DROP TABLE users;
DROP TABLE idempotency_keys;
DROP TABLE sync_payloads;
