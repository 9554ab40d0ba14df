//! Resource names in the AIP style (`tenants/acme/projects/shop/...`) and their parsing.
//!
//! Every variable segment is a DNS label, so a parsed name can be used safely as a
//! Kubernetes object name, a path component or a database key: no `..`, no `/`, no unicode.

use std::fmt;

/// Why a string is not a valid resource name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind} name; expected {pattern}")]
pub struct NameError {
    /// The kind of name expected.
    pub kind: &'static str,
    /// The expected pattern, for the error message.
    pub pattern: &'static str,
    /// The offending input, cut to a printable length.
    pub value: String,
}

/// Longest DNS label (RFC 1123).
pub const MAX_LABEL_LEN: usize = 63;

/// Whether `s` is an RFC 1123 DNS label that starts with a letter: 1–63 characters of
/// `a-z`, `0-9` and `-`, not ending in `-`.
pub fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LABEL_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Whether `s` is a positive decimal number without leading zeros that fits an `i64`.
fn is_number(s: &str) -> bool {
    !s.starts_with('0')
        && s.parse::<i64>().is_ok_and(|n| n > 0)
        && s.bytes().all(|b| b.is_ascii_digit())
}

/// Splits `s` against `pattern` (literal segments, `*` for a DNS label, `#` for a number)
/// and returns the variable segments, or `None` if it does not match.
fn match_pattern<'a>(s: &'a str, pattern: &[&str]) -> Option<Vec<&'a str>> {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() != pattern.len() {
        return None;
    }
    let mut vars = Vec::new();
    for (part, want) in parts.iter().zip(pattern) {
        if *want == "*" || *want == "#" {
            let ok = if *want == "*" {
                is_dns_label(part)
            } else {
                is_number(part)
            };
            if !ok {
                return None;
            }
            vars.push(*part);
        } else if part != want {
            return None;
        }
    }
    Some(vars)
}

fn name_error(kind: &'static str, pattern: &'static str, value: &str) -> NameError {
    // Keep hostile inputs out of error messages beyond a readable prefix.
    let value: String = value.chars().take(80).collect();
    NameError {
        kind,
        pattern,
        value,
    }
}

macro_rules! simple_name {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $pattern:literal, [$($lit:literal),*], { $($field:ident),+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty { $(
            #[doc = concat!("The `", stringify!($field), "` segment.")]
            pub $field: String,
        )+ }

        impl $ty {
            /// Parses the resource name, or explains what was expected.
            pub fn parse(s: &str) -> Result<Self, NameError> {
                let pattern = [$($lit),*];
                let vars = match_pattern(s, &pattern).ok_or_else(|| name_error($kind, $pattern, s))?;
                let mut vars = vars.into_iter();
                Ok(Self { $($field: vars.next().unwrap_or_default().to_owned()),+ })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut fields = [$(&self.$field),+].into_iter();
                let pattern = [$($lit),*];
                for (i, seg) in pattern.iter().enumerate() {
                    if i > 0 { f.write_str("/")?; }
                    if *seg == "*" || *seg == "#" {
                        f.write_str(fields.next().map(String::as_str).unwrap_or_default())?;
                    } else {
                        f.write_str(seg)?;
                    }
                }
                Ok(())
            }
        }
    };
}

simple_name!(
    /// `tenants/{tenant}`
    TenantName, "tenant", "tenants/{tenant}", ["tenants", "*"], { tenant });
simple_name!(
    /// `tenants/{tenant}/teams/{team}`
    TeamName, "team", "tenants/{tenant}/teams/{team}", ["tenants", "*", "teams", "*"], { tenant, team });
simple_name!(
    /// `tenants/{tenant}/roleBindings/{role_binding}`
    RoleBindingName, "role binding", "tenants/{tenant}/roleBindings/{role_binding}",
    ["tenants", "*", "roleBindings", "*"], { tenant, role_binding });
simple_name!(
    /// `datacenters/{datacenter}`
    DatacenterName, "datacenter", "datacenters/{datacenter}", ["datacenters", "*"], { datacenter });
simple_name!(
    /// `tenants/{tenant}/projects/{project}`
    ProjectName, "project", "tenants/{tenant}/projects/{project}",
    ["tenants", "*", "projects", "*"], { tenant, project });
simple_name!(
    /// `tenants/{tenant}/projects/{project}/environments/{environment}`
    EnvironmentName, "environment", "tenants/{tenant}/projects/{project}/environments/{environment}",
    ["tenants", "*", "projects", "*", "environments", "*"], { tenant, project, environment });
simple_name!(
    /// `tenants/{tenant}/projects/{project}/environments/{environment}/services/{service}`
    ServiceName, "service",
    "tenants/{tenant}/projects/{project}/environments/{environment}/services/{service}",
    ["tenants", "*", "projects", "*", "environments", "*", "services", "*"],
    { tenant, project, environment, service });
simple_name!(
    /// `tenants/{tenant}/projects/{project}/environments/{environment}/managedServices/{managed_service}`
    ManagedServiceName, "managed service",
    "tenants/{tenant}/projects/{project}/environments/{environment}/managedServices/{managed_service}",
    ["tenants", "*", "projects", "*", "environments", "*", "managedServices", "*"],
    { tenant, project, environment, managed_service });
simple_name!(
    /// `tenants/{tenant}/projects/{project}/environments/{environment}/services/{service}/deployments/{deployment}`
    DeploymentName, "deployment",
    "tenants/{tenant}/projects/{project}/environments/{environment}/services/{service}/deployments/{deployment}",
    ["tenants", "*", "projects", "*", "environments", "*", "services", "*", "deployments", "#"],
    { tenant, project, environment, service, deployment });

impl TenantName {
    /// The name of tenant `tenant` (not validated).
    pub fn new(tenant: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
        }
    }
}

impl ProjectName {
    /// The tenant owning this project.
    pub fn tenant_name(&self) -> TenantName {
        TenantName::new(&self.tenant)
    }
}

impl EnvironmentName {
    /// The project this environment belongs to.
    pub fn project_name(&self) -> ProjectName {
        ProjectName {
            tenant: self.tenant.clone(),
            project: self.project.clone(),
        }
    }
}

impl DeploymentName {
    /// The service it deploys.
    pub fn service_name(&self) -> ServiceName {
        ServiceName {
            tenant: self.tenant.clone(),
            project: self.project.clone(),
            environment: self.environment.clone(),
            service: self.service.clone(),
        }
    }

    /// The deployment numbered `number` of `service`.
    pub fn new(service: &ServiceName, number: i64) -> Self {
        Self {
            tenant: service.tenant.clone(),
            project: service.project.clone(),
            environment: service.environment.clone(),
            service: service.service.clone(),
            deployment: number.to_string(),
        }
    }

    /// Its number (parsing guarantees the last segment is one).
    pub fn number(&self) -> i64 {
        self.deployment.parse().unwrap_or(0)
    }
}

impl ManagedServiceName {
    /// What its sealed secrets are bound to, `{name}/secrets`: a sealed value moved to
    /// another service does not open.
    pub fn secrets_owner(&self) -> String {
        format!("{self}/secrets")
    }

    /// The environment it belongs to.
    pub fn environment_name(&self) -> EnvironmentName {
        EnvironmentName {
            tenant: self.tenant.clone(),
            project: self.project.clone(),
            environment: self.environment.clone(),
        }
    }
}

impl ServiceName {
    /// The full name of one of its secrets, `{service}/secrets/{secret}`: what its sealed
    /// value is bound to, and how errors name it.
    pub fn secret_name(&self, secret: &str) -> String {
        format!("{self}/secrets/{secret}")
    }

    /// The environment this service belongs to.
    pub fn environment_name(&self) -> EnvironmentName {
        EnvironmentName {
            tenant: self.tenant.clone(),
            project: self.project.clone(),
            environment: self.environment.clone(),
        }
    }
}

/// A user: `tenants/{tenant}/users/{user}`, or `users/{user}` for a platform admin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName {
    /// The owning tenant; `None` for a platform user.
    pub tenant: Option<String>,
    /// The `{user}` segment.
    pub user: String,
}

impl UserName {
    /// Parses a tenant or platform user name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if let Some(v) = match_pattern(s, &["tenants", "*", "users", "*"]) {
            return Ok(Self {
                tenant: Some(v[0].to_owned()),
                user: v[1].to_owned(),
            });
        }
        if let Some(v) = match_pattern(s, &["users", "*"]) {
            return Ok(Self {
                tenant: None,
                user: v[0].to_owned(),
            });
        }
        Err(name_error(
            "user",
            "tenants/{tenant}/users/{user} or users/{user}",
            s,
        ))
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tenant {
            Some(t) => write!(f, "tenants/{t}/users/{}", self.user),
            None => write!(f, "users/{}", self.user),
        }
    }
}

/// An API token: `{user}/apiTokens/{api_token}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiTokenName {
    /// The owning user.
    pub user: UserName,
    /// The `{api_token}` segment.
    pub api_token: String,
}

impl ApiTokenName {
    /// Parses a token name under a tenant or platform user.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let err = || name_error("API token", "{user}/apiTokens/{api_token}", s);
        let (user, token) = s.rsplit_once("/apiTokens/").ok_or_else(err)?;
        if !is_dns_label(token) {
            return Err(err());
        }
        let user = UserName::parse(user).map_err(|_| err())?;
        Ok(Self {
            user,
            api_token: token.to_owned(),
        })
    }
}

impl fmt::Display for ApiTokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/apiTokens/{}", self.user, self.api_token)
    }
}

/// What every resource name the API takes has in common: what it names, for a person, how
/// it is parsed, and the tenant it belongs to (which authorization decides in).
pub trait Named: Sized + fmt::Display {
    /// What it names, for a person (`managed service`), in refusals and `NOT_FOUND` answers.
    const NOUN: &'static str;
    /// Parses the name, or explains what was expected.
    fn parse(s: &str) -> Result<Self, NameError>;
    /// The tenant it belongs to; `None` for the platform's own resources.
    fn tenant(&self) -> Option<&str>;
}

macro_rules! named {
    ($ty:ident, $noun:literal, |$name:ident| $tenant:expr) => {
        impl Named for $ty {
            const NOUN: &'static str = $noun;
            fn parse(s: &str) -> Result<Self, NameError> {
                $ty::parse(s)
            }
            fn tenant(&self) -> Option<&str> {
                let $name = self;
                $tenant
            }
        }
    };
}

named!(TenantName, "tenant", |n| Some(&n.tenant));
named!(TeamName, "team", |n| Some(&n.tenant));
named!(RoleBindingName, "role binding", |n| Some(&n.tenant));
named!(DatacenterName, "datacenter", |_n| None);
named!(ProjectName, "project", |n| Some(&n.tenant));
named!(EnvironmentName, "environment", |n| Some(&n.tenant));
named!(ServiceName, "service", |n| Some(&n.tenant));
named!(ManagedServiceName, "managed service", |n| Some(&n.tenant));
named!(DeploymentName, "deployment", |n| Some(&n.tenant));
named!(UserName, "user", |n| n.tenant.as_deref());
named!(ApiTokenName, "API token", |n| n.user.tenant.as_deref());

/// Any resource that can carry events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceName {
    /// A tenant.
    Tenant(TenantName),
    /// A user.
    User(UserName),
    /// A team.
    Team(TeamName),
    /// A datacenter.
    Datacenter(DatacenterName),
    /// A project.
    Project(ProjectName),
    /// An environment.
    Environment(EnvironmentName),
    /// A service.
    Service(ServiceName),
    /// A managed service.
    ManagedService(ManagedServiceName),
}

impl ResourceName {
    /// Parses any event-carrying resource name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        TenantName::parse(s)
            .map(Self::Tenant)
            .or_else(|_| UserName::parse(s).map(Self::User))
            .or_else(|_| TeamName::parse(s).map(Self::Team))
            .or_else(|_| DatacenterName::parse(s).map(Self::Datacenter))
            .or_else(|_| ProjectName::parse(s).map(Self::Project))
            .or_else(|_| EnvironmentName::parse(s).map(Self::Environment))
            .or_else(|_| ServiceName::parse(s).map(Self::Service))
            .or_else(|_| ManagedServiceName::parse(s).map(Self::ManagedService))
            .map_err(|_| {
                name_error(
                    "resource",
                    "the name of a tenant, user, team, datacenter, project, environment, service or managed service",
                    s,
                )
            })
    }

    /// The tenant that owns the resource; `None` for platform-level resources.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Self::Tenant(n) => Some(&n.tenant),
            Self::User(n) => n.tenant.as_deref(),
            Self::Team(n) => Some(&n.tenant),
            Self::Datacenter(_) => None,
            Self::Project(n) => Some(&n.tenant),
            Self::Environment(n) => Some(&n.tenant),
            Self::Service(n) => Some(&n.tenant),
            Self::ManagedService(n) => Some(&n.tenant),
        }
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tenant(n) => n.fmt(f),
            Self::User(n) => n.fmt(f),
            Self::Team(n) => n.fmt(f),
            Self::Datacenter(n) => n.fmt(f),
            Self::Project(n) => n.fmt(f),
            Self::Environment(n) => n.fmt(f),
            Self::Service(n) => n.fmt(f),
            Self::ManagedService(n) => n.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_are_checked() {
        for ok in ["a", "acme", "a-1", "x0", &"a".repeat(63)] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "1a",
            "a-",
            "a_b",
            "a.b",
            "..",
            "é",
            &"a".repeat(64),
            "a b",
        ] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn names_round_trip() {
        let s = "tenants/acme/projects/shop/environments/production/services/api";
        let n = ServiceName::parse(s).expect("valid");
        assert_eq!(n.to_string(), s);
        assert_eq!(
            n.environment_name()
                .project_name()
                .tenant_name()
                .to_string(),
            "tenants/acme"
        );
        for u in ["tenants/acme/users/bob", "users/root"] {
            assert_eq!(UserName::parse(u).expect("valid").to_string(), u);
        }
        let t = "tenants/acme/users/bob/apiTokens/t1";
        assert_eq!(ApiTokenName::parse(t).expect("valid").to_string(), t);
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "tenants/../projects/x",
            "tenants/acme/projects/../../etc",
            "tenants/acme/projects/shop/",
            "/tenants/acme",
            "tenants/acme%2Fx",
            "tenants/ACME",
            "tenants/acme\u{202e}",
            "users/bob/apiTokens/../x",
        ] {
            assert!(ResourceName::parse(bad).is_err(), "{bad}");
            assert!(ApiTokenName::parse(bad).is_err(), "{bad}");
        }
    }
}
