//! Drivers: the agent's only I/O with its datacenter.

pub mod kube;
