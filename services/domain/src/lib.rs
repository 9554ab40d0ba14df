//! Outpost's domain: resource names, the resources themselves, input validation, roles and
//! the authorization policy, and machine shapes.
//!
//! Everything here is pure: no I/O, no async, no wire or database types. That keeps the rules
//! in one place, unit-testable without servers, and shared by the API, the store and (later)
//! the agent. Validation returns field violations as data; the API layer turns them into
//! `INVALID_ARGUMENT` with `BadRequest` details.
#![warn(missing_docs)]

pub mod authz;
pub mod deployment;
pub mod desired;
pub mod lifecycle;
pub mod logs;
pub mod managed;
pub mod names;
pub mod observed;
pub mod provider;
pub mod resources;
pub mod shape;
pub mod validate;

pub use names::{
    ApiTokenName, DatacenterName, DeploymentName, EnvironmentName, ManagedServiceName, NameError,
    Named, ProjectName, ResourceName, RoleBindingName, ServiceName, TeamName, TenantName, UserName,
};
pub use shape::Shape;
pub use validate::{FieldViolation, Violations};

/// A point in time as milliseconds since the Unix epoch, the store's portable time format.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The wall clock now: the one place Outpost reads it for rows, reports and expiries.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        Self(i64::try_from(ms).unwrap_or(i64::MAX))
    }
}
