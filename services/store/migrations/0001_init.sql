-- Portable SQL: runs unchanged on SQLite and PostgreSQL through sqlx::Any. Only TEXT,
-- BIGINT and BYTEA columns (the types Any maps on both); times are unix milliseconds.
-- Children reference parents without ON DELETE CASCADE: the store deletes explicitly and in
-- order, so a concurrent insert under a parent being deleted fails instead of vanishing.

-- The row with name '' is the platform itself: platform users, tokens and audit records hang
-- off it, so every table keys on a tenant and foreign keys work uniformly. Tenant ids are DNS
-- labels, never empty, and the store never returns this row.
CREATE TABLE tenants (
    name TEXT PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    version BIGINT NOT NULL
);
INSERT INTO tenants (name, uid, display_name, create_time, update_time, version)
VALUES ('', 'platform', 'platform', 0, 0, 1);

CREATE TABLE users (
    tenant TEXT NOT NULL REFERENCES tenants (name),
    name TEXT NOT NULL,
    uid TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    email TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE teams (
    tenant TEXT NOT NULL REFERENCES tenants (name),
    name TEXT NOT NULL,
    uid TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE team_members (
    tenant TEXT NOT NULL,
    team TEXT NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (tenant, team, member),
    FOREIGN KEY (tenant, team) REFERENCES teams (tenant, name),
    FOREIGN KEY (tenant, member) REFERENCES users (tenant, name)
);
CREATE INDEX team_members_by_member ON team_members (tenant, member);

CREATE TABLE api_tokens (
    tenant TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    create_time BIGINT NOT NULL,
    expire_time BIGINT NOT NULL,
    revoke_time BIGINT,
    PRIMARY KEY (tenant, owner, name),
    FOREIGN KEY (tenant, owner) REFERENCES users (tenant, name)
);

CREATE TABLE role_bindings (
    tenant TEXT NOT NULL REFERENCES tenants (name),
    name TEXT NOT NULL,
    member_user TEXT,
    member_team TEXT,
    role TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (tenant, name),
    FOREIGN KEY (tenant, member_user) REFERENCES users (tenant, name),
    FOREIGN KEY (tenant, member_team) REFERENCES teams (tenant, name)
);
CREATE INDEX role_bindings_by_user ON role_bindings (tenant, member_user);
CREATE INDEX role_bindings_by_team ON role_bindings (tenant, member_team);

CREATE TABLE datacenters (
    name TEXT PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    location TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE projects (
    tenant TEXT NOT NULL REFERENCES tenants (name),
    name TEXT NOT NULL,
    uid TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    default_datacenter TEXT NOT NULL REFERENCES datacenters (name),
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE environments (
    tenant TEXT NOT NULL,
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    datacenter TEXT NOT NULL REFERENCES datacenters (name),
    first_deploy_time BIGINT,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (tenant, project, name),
    FOREIGN KEY (tenant, project) REFERENCES projects (tenant, name)
);
CREATE INDEX environments_by_datacenter ON environments (datacenter);

CREATE TABLE services (
    tenant TEXT NOT NULL,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (tenant, project, environment, name),
    FOREIGN KEY (tenant, project, environment) REFERENCES environments (tenant, project, name)
);

-- History tables have no foreign keys: events and audit records outlive what they describe.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    resource TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    actor TEXT NOT NULL,
    create_time BIGINT NOT NULL
);
CREATE INDEX events_by_resource ON events (resource, id);

CREATE TABLE audit_records (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    actor TEXT NOT NULL,
    method TEXT NOT NULL,
    target TEXT NOT NULL,
    result TEXT NOT NULL,
    peer TEXT NOT NULL,
    request_id TEXT NOT NULL,
    create_time BIGINT NOT NULL
);
CREATE INDEX audit_records_by_tenant ON audit_records (tenant, id);

-- First answers to requests that carried a request_id, keyed per caller so one caller can
-- never replay another's answer.
CREATE TABLE idempotency_keys (
    principal TEXT NOT NULL,
    request_id TEXT NOT NULL,
    method TEXT NOT NULL,
    response BYTEA NOT NULL,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (principal, request_id)
);
