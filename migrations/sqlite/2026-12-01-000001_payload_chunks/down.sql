CREATE TABLE sync_payloads (
    run_id    TEXT PRIMARY KEY NOT NULL REFERENCES sync_runs (id),
    body_lz4  BLOB NOT NULL
);

-- Only bodies stored as one chunk can go back: the older schema cannot hold the others,
-- and their runs cannot be retried after the downgrade.
INSERT INTO sync_payloads (run_id, body_lz4)
SELECT run_id, body_lz4 FROM sync_payload_chunks c
WHERE seq = 0 AND NOT EXISTS (
    SELECT 1 FROM sync_payload_chunks o WHERE o.run_id = c.run_id AND o.seq > 0
);

DROP TABLE sync_payload_chunks;
