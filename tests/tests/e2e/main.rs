//! The end-to-end suite, one binary: real Outpost processes on loopback (and in network
//! namespaces the tests make), driven by the real grpcurl, kubectl and AWS CLI. Each module
//! is one story; `cargo test -p outpost-e2e --test e2e MODULE::` runs one of them.

mod agent_install;
mod agents;
mod air_gapped;
mod api_tls;
mod central_control_plane;
mod database_per_datacenter;
mod deploy_files;
mod deployments;
mod gateway;
mod local;
mod logs;
mod managed;
mod management_service;
mod otlp;
mod repository;
mod resilience;
mod shared_database;
mod unreachable_datacenter;
