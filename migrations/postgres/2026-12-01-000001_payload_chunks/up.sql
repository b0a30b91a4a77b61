-- The body of a push exactly as it was accepted, in chunks of about 1 MiB, each
-- LZ4-compressed on its own: a push is stored as it arrives and read back as a run goes,
-- never whole in memory. The chunks of a run, in seq order, concatenate to its body.
CREATE TABLE sync_payload_chunks (
    run_id    TEXT NOT NULL REFERENCES sync_runs (id),
    seq       INTEGER NOT NULL,
    body_lz4  BYTEA NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- A body stored whole is one chunk.
INSERT INTO sync_payload_chunks (run_id, seq, body_lz4)
SELECT run_id, 0, body_lz4 FROM sync_payloads;

DROP TABLE sync_payloads;
