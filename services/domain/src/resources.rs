//! The resources Outpost keeps, as plain data. The store reads and writes these; the proto
//! crate converts them to and from wire messages.

use serde::{Deserialize, Serialize};

use crate::{
    ApiTokenName, DatacenterName, EnvironmentName, ProjectName, RoleBindingName, ServiceName,
    Shape, TeamName, TenantName, Timestamp, UserName, authz::Role,
};

/// Bookkeeping every stored resource carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Server-assigned unique id.
    pub uid: String,
    /// Creation time.
    pub create_time: Timestamp,
    /// Last update time.
    pub update_time: Timestamp,
    /// Bumped by one on every update; the etag is derived from it.
    pub version: i64,
}

impl Meta {
    /// The etag clients send back for optimistic concurrency.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}

/// The etag of a resource at `version`.
pub fn etag_of(version: i64) -> String {
    format!("v{version}")
}

/// The version an etag names, or `None` if it names none (a malformed etag never matches).
pub fn version_of_etag(etag: &str) -> Option<i64> {
    etag.strip_prefix('v')?.parse().ok()
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its name.
    pub name: TenantName,
    /// Human-readable name.
    pub display_name: String,
    /// Bookkeeping.
    pub meta: Meta,
}

/// A user of a tenant, or a platform admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its name.
    pub name: UserName,
    /// Human-readable name.
    pub display_name: String,
    /// Contact address, possibly empty.
    pub email: String,
    /// Bookkeeping.
    pub meta: Meta,
}

/// A team of users of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Its name.
    pub name: TeamName,
    /// Human-readable name.
    pub display_name: String,
    /// Members, all of the same tenant, sorted and unique.
    pub members: Vec<UserName>,
    /// Bookkeeping.
    pub meta: Meta,
}

/// An API token's metadata; the secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Its name.
    pub name: ApiTokenName,
    /// Human-readable label.
    pub display_name: String,
    /// Creation time.
    pub create_time: Timestamp,
    /// Expiry.
    pub expire_time: Timestamp,
    /// Revocation time, if revoked.
    pub revoke_time: Option<Timestamp>,
}

/// Who a role binding grants a role to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// One user.
    User(UserName),
    /// Every member of a team.
    Team(TeamName),
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(u) => u.fmt(f),
            Self::Team(t) => t.fmt(f),
        }
    }
}

/// A grant of a role in a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBinding {
    /// Its name.
    pub name: RoleBindingName,
    /// Who gets the role.
    pub member: Member,
    /// The role.
    pub role: Role,
    /// Creation time.
    pub create_time: Timestamp,
}

/// A data center.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datacenter {
    /// Its name.
    pub name: DatacenterName,
    /// Human-readable name.
    pub display_name: String,
    /// Free-form location.
    pub location: String,
    /// Revision of its desired state; bumped by every change to what it should run.
    pub revision: i64,
    /// Bookkeeping.
    pub meta: Meta,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Its name.
    pub name: ProjectName,
    /// Human-readable name.
    pub display_name: String,
    /// Where new environments are placed.
    pub default_datacenter: DatacenterName,
    /// Bookkeeping.
    pub meta: Meta,
}

/// The environments every new project starts with.
pub const DEFAULT_ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

/// An environment of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// Its name.
    pub name: EnvironmentName,
    /// Human-readable name.
    pub display_name: String,
    /// Where it runs.
    pub datacenter: DatacenterName,
    /// When it was first deployed to; its datacenter is fixed from then on.
    pub first_deploy_time: Option<Timestamp>,
    /// Bookkeeping.
    pub meta: Meta,
}

/// A git repository to build a service from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSource {
    /// Clone URL.
    pub url: String,
    /// Branch, tag or commit; empty for the default branch.
    pub git_ref: String,
    /// Dockerfile path in the repository; empty for `Dockerfile`.
    pub dockerfile_path: String,
}

/// What a service runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// Nothing given (invalid; kept so validation can name the field).
    #[default]
    Unset,
    /// A container image reference.
    Image(String),
    /// A repository to build.
    Git(GitSource),
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// One port a service listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// Port number; validated to 1..=65535.
    pub container_port: i64,
    /// Protocol.
    pub protocol: Protocol,
    /// Optional name.
    pub name: String,
}

/// One environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// Everything a caller says about a service. Unvalidated when it comes from the wire;
/// [`crate::validate::service_spec`] checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Human-readable name.
    pub display_name: String,
    /// What to run.
    pub source: Source,
    /// Resources per replica; `None` when missing or not a known shape.
    pub shape: Option<Shape>,
    /// Replica count.
    pub replicas: i64,
    /// Environment variables.
    pub env: Vec<EnvVar>,
    /// Ports.
    pub ports: Vec<Port>,
    /// Readiness-check path; empty for none.
    pub health_check_path: String,
}

/// A service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its name.
    pub name: ServiceName,
    /// What it runs and how.
    pub spec: ServiceSpec,
    /// Where its lifecycle stands.
    pub rollout: ServiceRollout,
    /// Bookkeeping.
    pub meta: Meta,
}

/// Where a service's lifecycle stands (see [`crate::deployment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRollout {
    /// What it is doing, or how the last thing it did ended.
    pub status: crate::deployment::ServiceStatus,
    /// Why, for a person.
    pub message: String,
    /// The generation its workload should run at.
    pub generation: i64,
    /// Number of the deployment serving (or stopped and resumable); 0 for none.
    pub live_deployment: i64,
    /// Number of the deployment under way; 0 for none.
    pub current_deployment: i64,
    /// Scaled to zero.
    pub stopped: bool,
    /// Last restart request.
    pub restart_time: Timestamp,
}

impl Default for ServiceRollout {
    fn default() -> Self {
        Self {
            status: crate::deployment::ServiceStatus::NotDeployed,
            message: String::new(),
            generation: 0,
            live_deployment: 0,
            current_deployment: 0,
            stopped: false,
            restart_time: Timestamp(0),
        }
    }
}

/// Something that happened to a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Server-assigned id, sortable by time.
    pub id: String,
    /// The resource's name.
    pub resource: String,
    /// Machine-readable reason (`Created`, `Updated`, …).
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// Who caused it.
    pub actor: String,
    /// When.
    pub create_time: Timestamp,
}

/// A record of one mutating call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Server-assigned id, sortable by time.
    pub id: String,
    /// The tenant the call targeted; `None` for platform-level calls.
    pub tenant: Option<String>,
    /// Who called.
    pub actor: String,
    /// Full gRPC method.
    pub method: String,
    /// Resource acted on.
    pub target: String,
    /// gRPC code name of the result.
    pub result: String,
    /// Caller's address.
    pub peer: String,
    /// Idempotency key, possibly empty.
    pub request_id: String,
    /// When the call finished.
    pub create_time: Timestamp,
}
