-- The agent's durable local state: the last desired state it stored, and the outbox of
-- reports not yet acknowledged by the management side. Survives restarts and WAN cuts.
CREATE TABLE desired_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    body BLOB NOT NULL
);

-- AUTOINCREMENT: sequence numbers are never reused, even after acknowledged rows are
-- deleted, so the management side can recognise every resend.
CREATE TABLE outbox (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL
);
