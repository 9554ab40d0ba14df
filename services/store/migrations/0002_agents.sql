-- The agent link: per-datacenter desired-state revisions, join tokens, enrolled agents,
-- revoked certificates, the internal CA (its key sealed by a key the database never sees),
-- and what agents report back.

-- Bumped in the same transaction as every change to the datacenter's environments or
-- services, so a revision always names content at least that new.
ALTER TABLE datacenters ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

CREATE TABLE join_tokens (
    secret_sha256 TEXT PRIMARY KEY,
    datacenter TEXT NOT NULL REFERENCES datacenters (name),
    create_time BIGINT NOT NULL,
    expire_time BIGINT NOT NULL,
    used_time BIGINT
);
CREATE INDEX join_tokens_by_datacenter ON join_tokens (datacenter);

-- At most one agent per datacenter; re-enrolling replaces it (and revokes the old serial).
CREATE TABLE agents (
    datacenter TEXT PRIMARY KEY REFERENCES datacenters (name),
    serial TEXT NOT NULL,
    not_after BIGINT NOT NULL,
    enroll_time BIGINT NOT NULL,
    connected BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    agent_version TEXT NOT NULL,
    stored_revision BIGINT NOT NULL,
    cpu_millis BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    -- Highest report sequence applied: a resent report at or below it is a duplicate.
    report_sequence BIGINT NOT NULL
);

CREATE TABLE revoked_certificates (
    serial TEXT PRIMARY KEY,
    datacenter TEXT NOT NULL,
    revoke_time BIGINT NOT NULL
);

CREATE TABLE certificate_authorities (
    id TEXT PRIMARY KEY,
    cert_pem TEXT NOT NULL,
    sealed_key BYTEA NOT NULL,
    create_time BIGINT NOT NULL
);

-- The last observed state of each service's workload, as its agent reported it.
CREATE TABLE workload_statuses (
    tenant TEXT NOT NULL,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    service TEXT NOT NULL,
    datacenter TEXT NOT NULL,
    revision BIGINT NOT NULL,
    observed_generation BIGINT NOT NULL,
    ready_replicas BIGINT NOT NULL,
    updated_replicas BIGINT NOT NULL,
    desired_replicas BIGINT NOT NULL,
    phase TEXT NOT NULL,
    message TEXT NOT NULL,
    report_time BIGINT NOT NULL,
    PRIMARY KEY (tenant, project, environment, service)
);
