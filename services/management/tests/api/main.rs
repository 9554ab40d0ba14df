//! API tests: an in-process server on loopback with real clients. One test binary (linking
//! the stack once) with a module per concern.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod authz;
mod behaviour;
mod cases;
mod harness;
mod hostile;
