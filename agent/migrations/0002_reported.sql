-- What the agent last reported for each service, so a restart does not report an unchanged
-- status again (the management side would record it twice as events).
CREATE TABLE reported (
    service TEXT PRIMARY KEY,
    summary TEXT NOT NULL
);
