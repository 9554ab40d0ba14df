//! Integration tests of the simulated API server, through a real `kube::Client` (in-process)
//! and, for the binary, the real `kubectl`. One test binary, so the stack links once.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod api;
mod faults;
mod hostile;
mod kubectl;
mod persistence;
mod rollout;
mod support;
mod workloads;
