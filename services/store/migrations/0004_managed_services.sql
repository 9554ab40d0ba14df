-- Managed services (databases, caches, buckets) from the provider catalog. A deleted one
-- stays as a row in DELETED for a retention period (listed as recently deleted, never
-- recoverable), so names are unique only among the others.

CREATE TABLE managed_services (
    tenant TEXT NOT NULL,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL PRIMARY KEY,
    provider TEXT NOT NULL,
    display_name TEXT NOT NULL,
    -- JSON, valid against the provider's config schema.
    config TEXT NOT NULL,
    -- JSON object of the secrets, sealed by the management side's key file.
    sealed_secrets BYTEA NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    -- Bumped with every change of what should run, like a service's.
    generation BIGINT NOT NULL,
    -- JSON the agent reported (host, port, endpoint, …).
    details TEXT NOT NULL,
    delete_time BIGINT,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    version BIGINT NOT NULL,
    FOREIGN KEY (tenant, project, environment) REFERENCES environments (tenant, project, name)
);
CREATE UNIQUE INDEX managed_services_live_names ON managed_services (tenant, project, environment, name)
    WHERE status <> 'DELETED';
CREATE INDEX managed_services_by_environment ON managed_services (tenant, project, environment, name);
