-- Deployments: each one a snapshot of a service's spec, moving through the lifecycle of
-- DESIGN §5; the service row says which one is live, which one is under way, and the
-- generation its workload should run at (bumped with every change of what should run).

ALTER TABLE services ADD COLUMN status TEXT NOT NULL DEFAULT 'NOT_DEPLOYED';
ALTER TABLE services ADD COLUMN status_message TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
-- Deployment numbers; 0 for none.
ALTER TABLE services ADD COLUMN live_deployment BIGINT NOT NULL DEFAULT 0;
ALTER TABLE services ADD COLUMN current_deployment BIGINT NOT NULL DEFAULT 0;
ALTER TABLE services ADD COLUMN deployment_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE services ADD COLUMN stopped BIGINT NOT NULL DEFAULT 0;
ALTER TABLE services ADD COLUMN restart_time BIGINT NOT NULL DEFAULT 0;

CREATE TABLE deployments (
    tenant TEXT NOT NULL,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    service TEXT NOT NULL,
    number BIGINT NOT NULL,
    uid TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    -- The deployment a rollback or promotion copied, by name; '' otherwise.
    origin TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    -- The service generation it rolled out at; 0 until it started deploying.
    generation BIGINT NOT NULL,
    -- Every status it went through with its time, as JSON: [["QUEUED", ms], …].
    history TEXT NOT NULL,
    actor TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    end_time BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (tenant, project, environment, service, number),
    FOREIGN KEY (tenant, project, environment, service) REFERENCES services (tenant, project, environment, name)
);

-- Secret values, sealed by the management side's key file (never stored in clear).
CREATE TABLE service_secrets (
    tenant TEXT NOT NULL,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    update_time BIGINT NOT NULL,
    PRIMARY KEY (tenant, project, environment, service, name),
    FOREIGN KEY (tenant, project, environment, service) REFERENCES services (tenant, project, environment, name)
);

-- What a status report was about, for the lifecycle and for people.
ALTER TABLE workload_statuses ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workload_statuses ADD COLUMN reason TEXT NOT NULL DEFAULT '';
