//! What the benchmark programs share: the API client, the servers under test and the
//! seeding calls ([`targets`]), the closed-loop load generator with its percentiles
//! ([`load`]), throwaway PostgreSQL databases ([`postgres`]) and a process's memory and CPU
//! time ([`usage`]).
//!
//! The programs themselves are `api-bench` (`src/main.rs`: API throughput against a bare
//! tonic server), `agents-bench` (`src/agents/`: many simulated agents on one management
//! process) and `deploy-bench` (`src/deploy/`: the platform's own deploy and managed-service
//! overhead on a simulated cluster). See README.md.

pub mod load;
pub mod postgres;
pub mod targets;
pub mod usage;
