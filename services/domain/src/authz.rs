//! Roles and the authorization policy: who may do what to which kind of resource.
//!
//! One table ([`required`]) answers every question, so the API cannot drift from the rules,
//! and one function ([`authorize`]) applies it. A resource in another tenant is reported as
//! hidden (the API answers `NOT_FOUND`), never as forbidden, so callers learn nothing about
//! tenants that are not theirs.

use serde::{Deserialize, Serialize};

use crate::UserName;

/// A role within a tenant, ordered from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Reads the tenant's resources.
    Viewer,
    /// Viewer, plus changes services and environment placement.
    Developer,
    /// Developer, plus manages projects, environments, people and reads the audit log.
    Admin,
    /// Admin, plus grants ownership and updates the tenant.
    Owner,
}

impl Role {
    /// Stable lowercase name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Developer => "developer",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Inverse of [`Role::as_str`].
    pub fn from_str_opt(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "developer" => Some(Self::Developer),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user the token belongs to.
    pub user: UserName,
    /// Highest role the user holds in its own tenant, directly or through a team.
    pub role: Option<Role>,
}

impl Principal {
    /// Platform admins are the platform's own users (`users/{user}`).
    pub fn is_platform_admin(&self) -> bool {
        self.user.tenant.is_none()
    }
}

/// The kinds of resource the policy distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Tenants.
    Tenant,
    /// Users of a tenant; platform users are platform-only.
    User,
    /// Teams.
    Team,
    /// API tokens of another user.
    ApiToken,
    /// The caller's own API tokens.
    OwnApiToken,
    /// Role bindings granting roles below owner.
    RoleBinding,
    /// Role bindings granting owner.
    OwnerRoleBinding,
    /// Datacenters.
    Datacenter,
    /// The managed-service catalog.
    Provider,
    /// Projects.
    Project,
    /// Environments.
    Environment,
    /// Services.
    Service,
    /// Events of any resource.
    Event,
    /// Audit records.
    AuditRecord,
}

/// What is done to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Get or list.
    Read,
    /// Create.
    Create,
    /// Update, or a custom method that changes the resource.
    Update,
    /// Delete.
    Delete,
}

/// Who may perform an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Any authenticated caller.
    Anyone,
    /// A member of the resource's tenant holding at least this role, or a platform admin.
    TenantRole(Role),
    /// A tenant member with no role needed (their own tokens), or a platform admin.
    TenantMember,
    /// Platform admins only.
    PlatformAdmin,
}

/// The policy: what performing `verb` on a `kind` requires.
pub fn required(kind: Kind, verb: Verb) -> Requirement {
    use {Kind::*, Requirement::*, Role::*, Verb::*};
    match (kind, verb) {
        (Datacenter, Read) => Anyone,
        (Datacenter, _) => PlatformAdmin,
        (Provider, Read) => Anyone,
        (Provider, _) => PlatformAdmin,
        (Tenant, Read) => TenantRole(Viewer),
        (Tenant, Update) => TenantRole(Owner),
        (Tenant, Create | Delete) => PlatformAdmin,
        (OwnApiToken, _) => TenantMember,
        (ApiToken, _) => TenantRole(Admin),
        (AuditRecord, _) => TenantRole(Admin),
        (OwnerRoleBinding, Create | Update | Delete) => TenantRole(Owner),
        (
            User | Team | RoleBinding | OwnerRoleBinding | Project | Environment | Service | Event,
            Read,
        ) => TenantRole(Viewer),
        (Service, _) | (Environment, Update) => TenantRole(Developer),
        (User | Team | RoleBinding | Project | Environment | Event, _) => TenantRole(Admin),
    }
}

/// Why a call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The resource is in a tenant the caller does not belong to: report it as not found.
    #[error("not found")]
    Hidden,
    /// The caller can see the resource but lacks the role.
    #[error("{0}")]
    Forbidden(&'static str),
}

/// Decides whether `principal` may perform `verb` on a `kind` owned by `tenant` (`None` for
/// platform-level resources).
pub fn authorize(
    principal: &Principal,
    tenant: Option<&str>,
    kind: Kind,
    verb: Verb,
) -> Result<(), Denial> {
    if principal.is_platform_admin() {
        return Ok(());
    }
    let requirement = required(kind, verb);
    if requirement == Requirement::Anyone {
        return Ok(());
    }
    let Some(tenant) = tenant else {
        return Err(Denial::Forbidden("this needs a platform admin"));
    };
    if principal.user.tenant.as_deref() != Some(tenant) {
        return Err(Denial::Hidden);
    }
    match requirement {
        Requirement::Anyone | Requirement::TenantMember => Ok(()),
        Requirement::PlatformAdmin => Err(Denial::Forbidden("this needs a platform admin")),
        Requirement::TenantRole(needed) => match principal.role {
            Some(held) if held >= needed => Ok(()),
            _ => Err(Denial::Forbidden(match needed {
                Role::Viewer => "this needs the viewer role or higher",
                Role::Developer => "this needs the developer role or higher",
                Role::Admin => "this needs the admin role or higher",
                Role::Owner => "this needs the owner role",
            })),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(tenant: &str, role: Option<Role>) -> Principal {
        Principal {
            user: UserName {
                tenant: Some(tenant.into()),
                user: "u".into(),
            },
            role,
        }
    }

    #[test]
    fn other_tenants_are_hidden_for_every_role() {
        for role in [None, Some(Role::Viewer), Some(Role::Owner)] {
            let p = member("a", role);
            for verb in [Verb::Read, Verb::Create, Verb::Update, Verb::Delete] {
                assert_eq!(
                    authorize(&p, Some("b"), Kind::Project, verb),
                    Err(Denial::Hidden)
                );
            }
        }
    }

    #[test]
    fn roles_are_ordered() {
        let dev = member("a", Some(Role::Developer));
        assert!(authorize(&dev, Some("a"), Kind::Service, Verb::Create).is_ok());
        assert!(authorize(&dev, Some("a"), Kind::Project, Verb::Create).is_err());
        let viewer = member("a", Some(Role::Viewer));
        assert!(authorize(&viewer, Some("a"), Kind::Service, Verb::Read).is_ok());
        assert!(authorize(&viewer, Some("a"), Kind::Service, Verb::Update).is_err());
        let admin = member("a", Some(Role::Admin));
        assert!(authorize(&admin, Some("a"), Kind::OwnerRoleBinding, Verb::Create).is_err());
        assert!(authorize(&admin, None, Kind::Tenant, Verb::Create).is_err());
    }
}
