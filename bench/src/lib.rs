//! What the benchmark programs share: the API client and the servers under test
//! ([`targets`]) and the closed-loop load generator with its percentiles ([`load`]).
//!
//! The programs themselves are `api-bench` (`src/main.rs`: API throughput against a bare
//! tonic server) and `agents-bench` (`src/agents/`: many simulated agents on one management
//! process). See README.md.

pub mod load;
pub mod targets;
