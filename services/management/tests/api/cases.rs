//! One valid request per management RPC, written independently of the server's policy
//! table, with the role the test expects it to need. The authorization matrix and the
//! hostile-input test are both generated from this list, and a coverage check fails when an
//! RPC in the descriptor set has no entry here, so a new RPC is covered by default.
//!
//! Templates: `{T}` is the target tenant, `{U}` a value unique to this call, `{S}` the first
//! `name` in the answer of the last setup step. Setup steps run as a platform admin.

/// Who the test expects may make a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Every authenticated caller.
    Anyone,
    Viewer,
    Developer,
    Admin,
    Owner,
    /// Platform admins only.
    PlatformAdmin,
}

/// Whether a call targets a tenant (and so is tried against the caller's own and another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Tenant,
    /// Not about any one tenant (datacenters, the tenant list).
    Global,
}

pub struct Case {
    pub method: &'static str,
    pub setup: &'static [(&'static str, &'static str)],
    pub request: &'static str,
    pub need: Need,
    pub scope: Scope,
    /// A read (as platform admin) whose answer must be the same before and after a refused
    /// call: the proof that the refused call changed nothing.
    pub probe: Option<(&'static str, &'static str)>,
    /// What an authorized caller gets: OK, or for an action the resource's state cannot
    /// allow here (no agent runs in these tests) FAILED_PRECONDITION, which is only ever
    /// answered after authorization passed.
    pub allowed: tonic::Code,
}

use Need::*;
use Scope::*;

macro_rules! case {
    ($method:literal, [$($setup:expr),*], $request:expr, $need:expr, $scope:expr, $probe:expr) => {
        case!($method, [$($setup),*], $request, $need, $scope, $probe, tonic::Code::Ok)
    };
    ($method:literal, [$($setup:expr),*], $request:expr, $need:expr, $scope:expr, $probe:expr, $allowed:expr) => {
        Case { method: $method, setup: &[$($setup),*], request: $request, need: $need, scope: $scope, probe: $probe, allowed: $allowed }
    };
}

/// Creates service `s{U}` in tenant `{T}`'s production environment.
const CREATE_SERVICE: (&str, &str) = (
    "ServiceService/CreateService",
    r#"{"parent":"tenants/{T}/projects/p/environments/production","service_id":"s{U}","service":{"image":"nginx:1.27","shape":"SHAPE_FLX","replicas":1}}"#,
);
/// Deploys it (deployment 1; it stays DEPLOYING, no agent runs here).
const DEPLOY_SERVICE: (&str, &str) = (
    "DeploymentService/DeployService",
    r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#,
);
const SERVICE_PROBE: Option<(&str, &str)> = Some((
    "ServiceService/GetService",
    r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#,
));
const DEPLOYMENTS_PROBE: Option<(&str, &str)> = Some((
    "DeploymentService/ListDeployments",
    r#"{"parent":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#,
));

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "TenantService/GetTenant",
            [],
            r#"{"name":"tenants/{T}"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "TenantService/ListTenants",
            [],
            r#"{}"#,
            Viewer,
            Global,
            None
        ),
        case!(
            "TenantService/CreateTenant",
            [],
            r#"{"tenant_id":"n{U}","tenant":{}}"#,
            PlatformAdmin,
            Global,
            Some(("TenantService/GetTenant", r#"{"name":"tenants/n{U}"}"#))
        ),
        case!(
            "TenantService/UpdateTenant",
            [],
            r#"{"tenant":{"name":"tenants/{T}","display_name":"x{U}","etag":""}}"#,
            Owner,
            Tenant,
            Some(("TenantService/GetTenant", r#"{"name":"tenants/{T}"}"#))
        ),
        case!(
            "TenantService/DeleteTenant",
            [],
            r#"{"name":"tenants/{T}","etag":""}"#,
            PlatformAdmin,
            Tenant,
            Some(("TenantService/GetTenant", r#"{"name":"tenants/{T}"}"#))
        ),
        case!(
            "UserService/GetUser",
            [],
            r#"{"name":"tenants/{T}/users/target"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "UserService/ListUsers",
            [],
            r#"{"parent":"tenants/{T}"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "UserService/CreateUser",
            [],
            r#"{"parent":"tenants/{T}","user_id":"u{U}","user":{"email":"u@example.com"}}"#,
            Admin,
            Tenant,
            Some((
                "UserService/GetUser",
                r#"{"name":"tenants/{T}/users/u{U}"}"#
            ))
        ),
        case!(
            "UserService/UpdateUser",
            [(
                "UserService/CreateUser",
                r#"{"parent":"tenants/{T}","user_id":"u{U}","user":{}}"#
            )],
            r#"{"user":{"name":"tenants/{T}/users/u{U}","display_name":"x","etag":""}}"#,
            Admin,
            Tenant,
            Some((
                "UserService/GetUser",
                r#"{"name":"tenants/{T}/users/u{U}"}"#
            ))
        ),
        case!(
            "UserService/DeleteUser",
            [(
                "UserService/CreateUser",
                r#"{"parent":"tenants/{T}","user_id":"u{U}","user":{}}"#
            )],
            r#"{"name":"tenants/{T}/users/u{U}","etag":""}"#,
            Admin,
            Tenant,
            Some((
                "UserService/GetUser",
                r#"{"name":"tenants/{T}/users/u{U}"}"#
            ))
        ),
        case!(
            "TeamService/GetTeam",
            [(
                "TeamService/CreateTeam",
                r#"{"parent":"tenants/{T}","team_id":"t{U}","team":{}}"#
            )],
            r#"{"name":"tenants/{T}/teams/t{U}"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "TeamService/ListTeams",
            [],
            r#"{"parent":"tenants/{T}"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "TeamService/CreateTeam",
            [],
            r#"{"parent":"tenants/{T}","team_id":"t{U}","team":{"members":["tenants/{T}/users/target"]}}"#,
            Admin,
            Tenant,
            Some((
                "TeamService/GetTeam",
                r#"{"name":"tenants/{T}/teams/t{U}"}"#
            ))
        ),
        case!(
            "TeamService/UpdateTeam",
            [(
                "TeamService/CreateTeam",
                r#"{"parent":"tenants/{T}","team_id":"t{U}","team":{}}"#
            )],
            r#"{"team":{"name":"tenants/{T}/teams/t{U}","members":["tenants/{T}/users/target"],"etag":""}}"#,
            Admin,
            Tenant,
            Some((
                "TeamService/GetTeam",
                r#"{"name":"tenants/{T}/teams/t{U}"}"#
            ))
        ),
        case!(
            "TeamService/DeleteTeam",
            [(
                "TeamService/CreateTeam",
                r#"{"parent":"tenants/{T}","team_id":"t{U}","team":{}}"#
            )],
            r#"{"name":"tenants/{T}/teams/t{U}","etag":""}"#,
            Admin,
            Tenant,
            Some((
                "TeamService/GetTeam",
                r#"{"name":"tenants/{T}/teams/t{U}"}"#
            ))
        ),
        case!(
            "ApiTokenService/GetApiToken",
            [(
                "ApiTokenService/CreateApiToken",
                r#"{"parent":"tenants/{T}/users/target"}"#
            )],
            r#"{"name":"{S}"}"#,
            Admin,
            Tenant,
            None
        ),
        case!(
            "ApiTokenService/ListApiTokens",
            [],
            r#"{"parent":"tenants/{T}/users/target"}"#,
            Admin,
            Tenant,
            None
        ),
        case!(
            "ApiTokenService/CreateApiToken",
            [],
            r#"{"parent":"tenants/{T}/users/target","api_token":{"display_name":"ci"},"ttl":"3600s"}"#,
            Admin,
            Tenant,
            Some((
                "ApiTokenService/ListApiTokens",
                r#"{"parent":"tenants/{T}/users/target","page_size":1000}"#
            ))
        ),
        case!(
            "ApiTokenService/RevokeApiToken",
            [(
                "ApiTokenService/CreateApiToken",
                r#"{"parent":"tenants/{T}/users/target"}"#
            )],
            r#"{"name":"{S}"}"#,
            Admin,
            Tenant,
            Some(("ApiTokenService/GetApiToken", r#"{"name":"{S}"}"#))
        ),
        case!(
            "RoleBindingService/GetRoleBinding",
            [(
                "RoleBindingService/CreateRoleBinding",
                r#"{"parent":"tenants/{T}","role_binding":{"member":"tenants/{T}/users/target","role":"ROLE_VIEWER"}}"#
            )],
            r#"{"name":"{S}"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "RoleBindingService/ListRoleBindings",
            [],
            r#"{"parent":"tenants/{T}"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "RoleBindingService/CreateRoleBinding",
            [],
            r#"{"parent":"tenants/{T}","role_binding":{"member":"tenants/{T}/users/target","role":"ROLE_DEVELOPER"}}"#,
            Admin,
            Tenant,
            Some((
                "RoleBindingService/ListRoleBindings",
                r#"{"parent":"tenants/{T}","page_size":1000}"#
            ))
        ),
        case!(
            "RoleBindingService/DeleteRoleBinding",
            [(
                "RoleBindingService/CreateRoleBinding",
                r#"{"parent":"tenants/{T}","role_binding":{"member":"tenants/{T}/users/target","role":"ROLE_VIEWER"}}"#
            )],
            r#"{"name":"{S}"}"#,
            Admin,
            Tenant,
            Some(("RoleBindingService/GetRoleBinding", r#"{"name":"{S}"}"#))
        ),
        case!(
            "DatacenterService/GetDatacenter",
            [],
            r#"{"name":"datacenters/dc1"}"#,
            Anyone,
            Global,
            None
        ),
        case!(
            "DatacenterService/ListDatacenters",
            [],
            r#"{}"#,
            Anyone,
            Global,
            None
        ),
        case!(
            "DatacenterService/CreateDatacenter",
            [],
            r#"{"datacenter_id":"d{U}","datacenter":{"location":"fra"}}"#,
            PlatformAdmin,
            Global,
            Some((
                "DatacenterService/GetDatacenter",
                r#"{"name":"datacenters/d{U}"}"#
            ))
        ),
        case!(
            "DatacenterService/UpdateDatacenter",
            [],
            r#"{"datacenter":{"name":"datacenters/dc1","display_name":"x{U}","etag":""}}"#,
            PlatformAdmin,
            Global,
            Some((
                "DatacenterService/GetDatacenter",
                r#"{"name":"datacenters/dc1"}"#
            ))
        ),
        case!(
            "DatacenterService/DeleteDatacenter",
            [(
                "DatacenterService/CreateDatacenter",
                r#"{"datacenter_id":"d{U}","datacenter":{}}"#
            )],
            r#"{"name":"datacenters/d{U}","etag":""}"#,
            PlatformAdmin,
            Global,
            Some((
                "DatacenterService/GetDatacenter",
                r#"{"name":"datacenters/d{U}"}"#
            ))
        ),
        case!(
            "DatacenterService/CreateJoinToken",
            [],
            r#"{"datacenter":"datacenters/dc1","ttl":"600s"}"#,
            PlatformAdmin,
            Global,
            None
        ),
        case!(
            "DatacenterService/RevokeAgent",
            [],
            r#"{"name":"datacenters/dc1"}"#,
            PlatformAdmin,
            Global,
            Some((
                "DatacenterService/GetDatacenter",
                r#"{"name":"datacenters/dc1"}"#
            ))
        ),
        case!(
            "ProjectService/GetProject",
            [],
            r#"{"name":"tenants/{T}/projects/p"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "ProjectService/ListProjects",
            [],
            r#"{"parent":"tenants/{T}"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "ProjectService/CreateProject",
            [],
            r#"{"parent":"tenants/{T}","project_id":"p{U}","project":{"default_datacenter":"datacenters/dc1"}}"#,
            Admin,
            Tenant,
            Some((
                "ProjectService/GetProject",
                r#"{"name":"tenants/{T}/projects/p{U}"}"#
            ))
        ),
        case!(
            "ProjectService/UpdateProject",
            [(
                "ProjectService/CreateProject",
                r#"{"parent":"tenants/{T}","project_id":"p{U}","project":{"default_datacenter":"datacenters/dc1"}}"#
            )],
            r#"{"project":{"name":"tenants/{T}/projects/p{U}","display_name":"x","etag":""},"update_mask":"displayName"}"#,
            Admin,
            Tenant,
            Some((
                "ProjectService/GetProject",
                r#"{"name":"tenants/{T}/projects/p{U}"}"#
            ))
        ),
        case!(
            "ProjectService/DeleteProject",
            [(
                "ProjectService/CreateProject",
                r#"{"parent":"tenants/{T}","project_id":"p{U}","project":{"default_datacenter":"datacenters/dc1"}}"#
            )],
            r#"{"name":"tenants/{T}/projects/p{U}","etag":""}"#,
            Admin,
            Tenant,
            Some((
                "ProjectService/GetProject",
                r#"{"name":"tenants/{T}/projects/p{U}"}"#
            ))
        ),
        case!(
            "EnvironmentService/GetEnvironment",
            [],
            r#"{"name":"tenants/{T}/projects/p/environments/production"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "EnvironmentService/ListEnvironments",
            [],
            r#"{"parent":"tenants/{T}/projects/p"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "EnvironmentService/CreateEnvironment",
            [],
            r#"{"parent":"tenants/{T}/projects/p","environment_id":"e{U}","environment":{}}"#,
            Admin,
            Tenant,
            Some((
                "EnvironmentService/GetEnvironment",
                r#"{"name":"tenants/{T}/projects/p/environments/e{U}"}"#
            ))
        ),
        case!(
            "EnvironmentService/UpdateEnvironment",
            [(
                "EnvironmentService/CreateEnvironment",
                r#"{"parent":"tenants/{T}/projects/p","environment_id":"e{U}","environment":{}}"#
            )],
            r#"{"environment":{"name":"tenants/{T}/projects/p/environments/e{U}","display_name":"x","datacenter":"datacenters/dc1","etag":""}}"#,
            Developer,
            Tenant,
            Some((
                "EnvironmentService/GetEnvironment",
                r#"{"name":"tenants/{T}/projects/p/environments/e{U}"}"#
            ))
        ),
        case!(
            "EnvironmentService/DeleteEnvironment",
            [(
                "EnvironmentService/CreateEnvironment",
                r#"{"parent":"tenants/{T}/projects/p","environment_id":"e{U}","environment":{}}"#
            )],
            r#"{"name":"tenants/{T}/projects/p/environments/e{U}","etag":""}"#,
            Admin,
            Tenant,
            Some((
                "EnvironmentService/GetEnvironment",
                r#"{"name":"tenants/{T}/projects/p/environments/e{U}"}"#
            ))
        ),
        case!(
            "ServiceService/GetService",
            [],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "ServiceService/ListServices",
            [],
            r#"{"parent":"tenants/{T}/projects/p/environments/production"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "ServiceService/CreateService",
            [],
            r#"{"parent":"tenants/{T}/projects/p/environments/production","service_id":"s{U}","service":{"image":"nginx:1.27","shape":"SHAPE_FLX","replicas":1,"env":[{"name":"MODE","value":"prod"}],"ports":[{"container_port":8080}],"health_check_path":"/healthz"}}"#,
            Developer,
            Tenant,
            Some((
                "ServiceService/GetService",
                r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#
            ))
        ),
        case!(
            "ServiceService/UpdateService",
            [(
                "ServiceService/CreateService",
                r#"{"parent":"tenants/{T}/projects/p/environments/production","service_id":"s{U}","service":{"image":"nginx:1.27","shape":"SHAPE_FLX","replicas":1}}"#
            )],
            r#"{"service":{"name":"tenants/{T}/projects/p/environments/production/services/s{U}","replicas":3,"etag":""},"update_mask":"replicas"}"#,
            Developer,
            Tenant,
            Some((
                "ServiceService/GetService",
                r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#
            ))
        ),
        case!(
            "ServiceService/DeleteService",
            [(
                "ServiceService/CreateService",
                r#"{"parent":"tenants/{T}/projects/p/environments/production","service_id":"s{U}","service":{"image":"nginx:1.27","shape":"SHAPE_FLX","replicas":1}}"#
            )],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}","etag":""}"#,
            Developer,
            Tenant,
            Some((
                "ServiceService/GetService",
                r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#
            ))
        ),
        case!(
            "ServiceService/StopService",
            [CREATE_SERVICE],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#,
            Developer,
            Tenant,
            SERVICE_PROBE,
            tonic::Code::FailedPrecondition
        ),
        case!(
            "ServiceService/RestartService",
            [CREATE_SERVICE],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#,
            Developer,
            Tenant,
            SERVICE_PROBE,
            tonic::Code::FailedPrecondition
        ),
        case!(
            "ServiceService/SetServiceSecret",
            [CREATE_SERVICE],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}","secret":"TOKEN","value":"v{U}"}"#,
            Developer,
            Tenant,
            Some((
                "ServiceService/ListServiceSecrets",
                r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#
            ))
        ),
        case!(
            "ServiceService/DeleteServiceSecret",
            [
                CREATE_SERVICE,
                (
                    "ServiceService/SetServiceSecret",
                    r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}","secret":"TOKEN","value":"v"}"#
                )
            ],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}","secret":"TOKEN"}"#,
            Developer,
            Tenant,
            Some((
                "ServiceService/ListServiceSecrets",
                r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#
            ))
        ),
        case!(
            "ServiceService/ListServiceSecrets",
            [],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "DeploymentService/DeployService",
            [CREATE_SERVICE],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#,
            Developer,
            Tenant,
            DEPLOYMENTS_PROBE
        ),
        case!(
            "DeploymentService/RedeployService",
            [CREATE_SERVICE, DEPLOY_SERVICE],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}"}"#,
            Developer,
            Tenant,
            DEPLOYMENTS_PROBE
        ),
        case!(
            "DeploymentService/RollbackService",
            [CREATE_SERVICE, DEPLOY_SERVICE],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}","deployment":"tenants/{T}/projects/p/environments/production/services/s{U}/deployments/1"}"#,
            Developer,
            Tenant,
            DEPLOYMENTS_PROBE
        ),
        case!(
            "DeploymentService/GetDeployment",
            [CREATE_SERVICE, DEPLOY_SERVICE],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}/deployments/1"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "DeploymentService/ListDeployments",
            [],
            r#"{"parent":"tenants/{T}/projects/p/environments/production/services/s"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "DeploymentService/CancelDeployment",
            [CREATE_SERVICE, DEPLOY_SERVICE],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}/deployments/1"}"#,
            Developer,
            Tenant,
            DEPLOYMENTS_PROBE
        ),
        case!(
            "DeploymentService/PromoteDeployment",
            [CREATE_SERVICE, DEPLOY_SERVICE],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}/deployments/1","target_environment":"tenants/{T}/projects/p/environments/staging"}"#,
            Developer,
            Tenant,
            Some((
                "ServiceService/GetService",
                r#"{"name":"tenants/{T}/projects/p/environments/staging/services/s{U}"}"#
            ))
        ),
        case!(
            "DeploymentService/WatchDeployment",
            [CREATE_SERVICE, DEPLOY_SERVICE],
            r#"{"name":"tenants/{T}/projects/p/environments/production/services/s{U}/deployments/1"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "EnvironmentService/DeployEnvironment",
            [CREATE_SERVICE],
            r#"{"name":"tenants/{T}/projects/p/environments/production"}"#,
            Developer,
            Tenant,
            DEPLOYMENTS_PROBE
        ),
        case!(
            "EnvironmentService/StopEnvironment",
            [],
            r#"{"name":"tenants/{T}/projects/p/environments/production"}"#,
            Developer,
            Tenant,
            None
        ),
        case!(
            "EnvironmentService/RestartEnvironment",
            [],
            r#"{"name":"tenants/{T}/projects/p/environments/production"}"#,
            Developer,
            Tenant,
            None
        ),
        case!(
            "EnvironmentService/WatchEnvironment",
            [],
            r#"{"name":"tenants/{T}/projects/p/environments/development"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "ProviderService/ListProviders",
            [],
            r#"{}"#,
            Anyone,
            Global,
            None
        ),
        case!(
            "ProviderService/GetProvider",
            [],
            r#"{"name":"providers/postgresql"}"#,
            Anyone,
            Global,
            None
        ),
        case!(
            "EventService/ListEvents",
            [],
            r#"{"parent":"tenants/{T}/projects/p"}"#,
            Viewer,
            Tenant,
            None
        ),
        case!(
            "AuditService/ListAuditRecords",
            [],
            r#"{"parent":"tenants/{T}"}"#,
            Admin,
            Tenant,
            None
        ),
        // Logs are read through the datacenter's agent, and none runs here.
        case!(
            "LogService/ReadLogs",
            [],
            r#"{"resource":"tenants/{T}/projects/p/environments/production/services/s","tail_lines":10}"#,
            Viewer,
            Tenant,
            None,
            tonic::Code::Unavailable
        ),
        case!(
            "LogService/StreamLogs",
            [CREATE_SERVICE, DEPLOY_SERVICE],
            r#"{"resource":"tenants/{T}/projects/p/environments/production/services/s{U}/deployments/1","since_seconds":60}"#,
            Viewer,
            Tenant,
            None,
            tonic::Code::Unavailable
        ),
    ]
}

/// Fills a template.
pub fn render(template: &str, tenant: &str, unique: &str, setup_name: &str) -> String {
    template
        .replace("{T}", tenant)
        .replace("{U}", unique)
        .replace("{S}", setup_name)
}

/// The first `name` string in a JSON answer, depth first.
pub fn first_name(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => map
            .get("name")
            .and_then(|n| n.as_str().map(str::to_owned))
            .or_else(|| map.values().find_map(first_name)),
        serde_json::Value::Array(items) => items.iter().find_map(first_name),
        _ => None,
    }
}
