-- What an agent reports of its datacenter's Ceph: raw capacity and use (0 when it has no
-- Ceph or could not read it), and whether it can make buckets (1) or not (0).
ALTER TABLE agents ADD COLUMN storage_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN storage_used_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN object_storage BIGINT NOT NULL DEFAULT 0;
