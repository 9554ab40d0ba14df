//! Drivers: the agent's only I/O with its datacenter.

pub mod ceph;
pub mod kube;
