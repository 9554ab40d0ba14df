//! The Outpost management service: the public gRPC API (`outpost.management.v1`) with
//! authentication, authorization and audit, served over the store.
//!
//! `main.rs` only loads config and runs [`server::run`]; everything else is here so tests
//! start the same server in-process on `127.0.0.1:0`.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod gateway;
pub mod instance;
pub mod rpc;
pub mod server;
pub mod tls;
