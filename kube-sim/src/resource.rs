//! The table of resource types the simulator serves: their group, version, kind, plural,
//! short names and scope. Discovery, routing and storage keys all read this one table, so a
//! resource cannot be routable without also being discoverable (and vice versa).

use std::fmt;

/// A resource type served by the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Resource {
    Namespace,
    Node,
    Pod,
    Service,
    Secret,
    ConfigMap,
    PersistentVolumeClaim,
    Event,
    Deployment,
    ReplicaSet,
    StatefulSet,
    Job,
    ServiceAccount,
    ClusterRole,
    ClusterRoleBinding,
    Role,
    RoleBinding,
}

/// Static facts about one resource type, as a real API server would advertise them.
#[derive(Debug)]
pub(crate) struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    /// Whether writes to the main resource ignore `.status` (a `status` subresource exists).
    pub status_subresource: bool,
}

const fn info(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
    status_subresource: bool,
) -> ResourceInfo {
    ResourceInfo {
        group,
        version: "v1",
        kind,
        plural,
        singular,
        short_names,
        namespaced,
        status_subresource,
    }
}

static NAMESPACE: ResourceInfo = info(
    "",
    "Namespace",
    "namespaces",
    "namespace",
    &["ns"],
    false,
    true,
);
static NODE: ResourceInfo = info("", "Node", "nodes", "node", &["no"], false, true);
static POD: ResourceInfo = info("", "Pod", "pods", "pod", &["po"], true, true);
static SERVICE: ResourceInfo = info("", "Service", "services", "service", &["svc"], true, true);
static SECRET: ResourceInfo = info("", "Secret", "secrets", "secret", &[], true, false);
static CONFIG_MAP: ResourceInfo = info(
    "",
    "ConfigMap",
    "configmaps",
    "configmap",
    &["cm"],
    true,
    false,
);
static PVC: ResourceInfo = info(
    "",
    "PersistentVolumeClaim",
    "persistentvolumeclaims",
    "persistentvolumeclaim",
    &["pvc"],
    true,
    true,
);
static EVENT: ResourceInfo = info("", "Event", "events", "event", &["ev"], true, false);
static DEPLOYMENT: ResourceInfo = info(
    "apps",
    "Deployment",
    "deployments",
    "deployment",
    &["deploy"],
    true,
    true,
);
static REPLICA_SET: ResourceInfo = info(
    "apps",
    "ReplicaSet",
    "replicasets",
    "replicaset",
    &["rs"],
    true,
    true,
);
static STATEFUL_SET: ResourceInfo = info(
    "apps",
    "StatefulSet",
    "statefulsets",
    "statefulset",
    &["sts"],
    true,
    true,
);
static JOB: ResourceInfo = info("batch", "Job", "jobs", "job", &[], true, true);
static SERVICE_ACCOUNT: ResourceInfo = info(
    "",
    "ServiceAccount",
    "serviceaccounts",
    "serviceaccount",
    &["sa"],
    true,
    false,
);
// RBAC objects are stored and served, not enforced: who may do what is checked from the
// requests the simulator records (`Sim::requests`), not by refusing them.
const RBAC: &str = "rbac.authorization.k8s.io";
static CLUSTER_ROLE: ResourceInfo = info(
    RBAC,
    "ClusterRole",
    "clusterroles",
    "clusterrole",
    &[],
    false,
    false,
);
static CLUSTER_ROLE_BINDING: ResourceInfo = info(
    RBAC,
    "ClusterRoleBinding",
    "clusterrolebindings",
    "clusterrolebinding",
    &[],
    false,
    false,
);
static ROLE: ResourceInfo = info(RBAC, "Role", "roles", "role", &[], true, false);
static ROLE_BINDING: ResourceInfo = info(
    RBAC,
    "RoleBinding",
    "rolebindings",
    "rolebinding",
    &[],
    true,
    false,
);

impl Resource {
    /// Every served resource, in discovery order.
    pub(crate) const ALL: [Resource; 17] = [
        Resource::Namespace,
        Resource::Node,
        Resource::Pod,
        Resource::Service,
        Resource::Secret,
        Resource::ConfigMap,
        Resource::PersistentVolumeClaim,
        Resource::Event,
        Resource::Deployment,
        Resource::ReplicaSet,
        Resource::StatefulSet,
        Resource::Job,
        Resource::ServiceAccount,
        Resource::ClusterRole,
        Resource::ClusterRoleBinding,
        Resource::Role,
        Resource::RoleBinding,
    ];

    pub(crate) fn info(self) -> &'static ResourceInfo {
        match self {
            Resource::Namespace => &NAMESPACE,
            Resource::Node => &NODE,
            Resource::Pod => &POD,
            Resource::Service => &SERVICE,
            Resource::Secret => &SECRET,
            Resource::ConfigMap => &CONFIG_MAP,
            Resource::PersistentVolumeClaim => &PVC,
            Resource::Event => &EVENT,
            Resource::Deployment => &DEPLOYMENT,
            Resource::ReplicaSet => &REPLICA_SET,
            Resource::StatefulSet => &STATEFUL_SET,
            Resource::Job => &JOB,
            Resource::ServiceAccount => &SERVICE_ACCOUNT,
            Resource::ClusterRole => &CLUSTER_ROLE,
            Resource::ClusterRoleBinding => &CLUSTER_ROLE_BINDING,
            Resource::Role => &ROLE,
            Resource::RoleBinding => &ROLE_BINDING,
        }
    }

    /// `v1`, `apps/v1`, `batch/v1`, `rbac.authorization.k8s.io/v1`.
    pub(crate) fn api_version(self) -> &'static str {
        match self.info().group {
            "" => "v1",
            "apps" => "apps/v1",
            "batch" => "batch/v1",
            _ => "rbac.authorization.k8s.io/v1",
        }
    }

    pub(crate) fn kind(self) -> &'static str {
        self.info().kind
    }

    /// Member of the `all` category (`kubectl get all`): workloads and services.
    pub(crate) fn in_all(self) -> bool {
        matches!(
            self,
            Resource::Pod
                | Resource::Service
                | Resource::Deployment
                | Resource::ReplicaSet
                | Resource::StatefulSet
                | Resource::Job
        )
    }

    /// Has a `scale` subresource (`kubectl scale`).
    pub(crate) fn scalable(self) -> bool {
        matches!(
            self,
            Resource::Deployment | Resource::ReplicaSet | Resource::StatefulSet
        )
    }

    pub(crate) fn namespaced(self) -> bool {
        self.info().namespaced
    }

    /// The resource served at `/api{s}/GROUP/VERSION/PLURAL`.
    pub(crate) fn from_path(group: &str, version: &str, plural: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| {
            let i = r.info();
            i.group == group && i.version == version && i.plural == plural
        })
    }

    /// The resource whose objects carry this `apiVersion` and `kind`.
    pub(crate) fn from_type(api_version: &str, kind: &str) -> Option<Resource> {
        Resource::ALL
            .into_iter()
            .find(|r| r.api_version() == api_version && r.kind() == kind)
    }

    /// Resources of one group/version, for an APIResourceList.
    pub(crate) fn in_group_version(group: &str, version: &str) -> impl Iterator<Item = Resource> {
        Resource::ALL.into_iter().filter(move |r| {
            let i = r.info();
            i.group == group && i.version == version
        })
    }
}

/// Formats as a real API server names a resource in messages: `pods`, `deployments.apps`.
impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.info();
        if i.group.is_empty() {
            f.write_str(i.plural)
        } else {
            write!(f, "{}.{}", i.plural, i.group)
        }
    }
}
