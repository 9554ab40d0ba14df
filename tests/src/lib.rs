//! Harness for end-to-end tests: start Outpost binaries as real processes on loopback, wait
//! for their ready files, run the real grpcurl against them, and check their logs.
//!
//! Every wait is bounded; nothing sleeps to synchronize except [`wait_for`]'s polling.

mod grpc;
pub mod kubernetes;
mod management;
mod process;
pub mod proxy;
mod readme;

pub use grpc::{Grpcurl, grpcurl, grpcurl_call};
pub use kubernetes::kubectl;
pub use management::{Installation, Management};
pub use process::{
    Process, agent, agent_settings, agent_variables, agent_with, bin, cluster, wait_for,
};
pub use readme::{markdown_commands, run_shell, run_walkthrough};
