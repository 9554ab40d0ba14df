-- Whether an agent reaches its datacenter's Kubernetes API server: since when it has not
-- (unix ms; 0 while it does), and its last failure to, for a person.
ALTER TABLE agents ADD COLUMN cluster_unreachable_since BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN cluster_error TEXT NOT NULL DEFAULT '';
