//! Outpost's wire types, generated from `proto/outpost`, and the descriptor set that server
//! reflection and grpcurl read. This crate is the only place where wire types meet domain
//! types; nothing here touches the store or the network.
#![warn(missing_docs)]

pub mod convert;

/// `outpost.management.v1`: the public management API.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod management {
    /// Version 1 of the management API.
    pub mod v1 {
        tonic::include_proto!("outpost.management.v1");
    }
}

/// `outpost.agent.v1`: enrollment and the agent link.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod agent {
    /// Version 1 of the agent protocol.
    pub mod v1 {
        tonic::include_proto!("outpost.agent.v1");
    }
}

/// The encoded `FileDescriptorSet` of every Outpost proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("outpost_descriptor");
