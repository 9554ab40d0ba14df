//! The only conversions between wire messages and domain types. Domain → wire is total;
//! wire → domain never fails either: values that cannot be represented (an unknown enum
//! number, a negative port) are carried through so that domain validation can name the field.

pub mod agent;
pub mod json;

use outpost_domain::{
    Timestamp,
    authz::Role,
    resources::{self as d, Member},
    shape::Shape,
};

use crate::management::v1 as pb;

/// Wire timestamp of a domain time.
pub fn timestamp(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.0.div_euclid(1000),
        nanos: i32::try_from(t.0.rem_euclid(1000) * 1_000_000).unwrap_or_default(),
    }
}

/// Domain time of a wire timestamp (saturating).
pub fn from_timestamp(t: &prost_types::Timestamp) -> Timestamp {
    let ms = t
        .seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos / 1_000_000));
    Timestamp(ms)
}

/// What an unreachable datacenter means for a resource placed there: with `waiting`, a
/// change of it waits for the datacenter.
pub fn datacenter_unreachable(
    u: &outpost_domain::observed::Unreachable,
    waiting: bool,
) -> pb::DatacenterUnreachable {
    use pb::datacenter_unreachable::Cause;
    pb::DatacenterUnreachable {
        datacenter: u.datacenter.to_string(),
        last_seen_time: u.last_seen.map(timestamp),
        message: u.message(waiting),
        cause: match u.cluster {
            Some(_) => Cause::Cluster,
            None => Cause::Agent,
        }
        .into(),
        cluster_unreachable_since: u.cluster.as_ref().map(|c| timestamp(c.since)),
    }
}

impl From<d::Tenant> for pb::Tenant {
    fn from(t: d::Tenant) -> Self {
        Self {
            name: t.name.to_string(),
            uid: t.meta.uid.clone(),
            display_name: t.display_name,
            create_time: Some(timestamp(t.meta.create_time)),
            update_time: Some(timestamp(t.meta.update_time)),
            etag: t.meta.etag(),
        }
    }
}

impl From<d::User> for pb::User {
    fn from(u: d::User) -> Self {
        Self {
            name: u.name.to_string(),
            uid: u.meta.uid.clone(),
            display_name: u.display_name,
            email: u.email,
            create_time: Some(timestamp(u.meta.create_time)),
            update_time: Some(timestamp(u.meta.update_time)),
            etag: u.meta.etag(),
        }
    }
}

impl From<d::Team> for pb::Team {
    fn from(t: d::Team) -> Self {
        Self {
            name: t.name.to_string(),
            uid: t.meta.uid.clone(),
            display_name: t.display_name,
            members: t.members.iter().map(ToString::to_string).collect(),
            create_time: Some(timestamp(t.meta.create_time)),
            update_time: Some(timestamp(t.meta.update_time)),
            etag: t.meta.etag(),
        }
    }
}

impl From<d::ApiToken> for pb::ApiToken {
    fn from(t: d::ApiToken) -> Self {
        Self {
            name: t.name.to_string(),
            display_name: t.display_name,
            create_time: Some(timestamp(t.create_time)),
            expire_time: Some(timestamp(t.expire_time)),
            revoke_time: t.revoke_time.map(timestamp),
        }
    }
}

/// Wire role of a domain role.
pub fn role(r: Role) -> pb::Role {
    match r {
        Role::Viewer => pb::Role::Viewer,
        Role::Developer => pb::Role::Developer,
        Role::Admin => pb::Role::Admin,
        Role::Owner => pb::Role::Owner,
    }
}

/// Domain role of a wire role number; `None` for unset or unknown.
pub fn from_role(n: i32) -> Option<Role> {
    match pb::Role::try_from(n).ok()? {
        pb::Role::Unspecified => None,
        pb::Role::Viewer => Some(Role::Viewer),
        pb::Role::Developer => Some(Role::Developer),
        pb::Role::Admin => Some(Role::Admin),
        pb::Role::Owner => Some(Role::Owner),
    }
}

impl From<d::RoleBinding> for pb::RoleBinding {
    fn from(b: d::RoleBinding) -> Self {
        Self {
            name: b.name.to_string(),
            member: match &b.member {
                Member::User(u) => u.to_string(),
                Member::Team(t) => t.to_string(),
            },
            role: role(b.role).into(),
            create_time: Some(timestamp(b.create_time)),
        }
    }
}

impl From<d::Datacenter> for pb::Datacenter {
    fn from(dc: d::Datacenter) -> Self {
        Self {
            name: dc.name.to_string(),
            uid: dc.meta.uid.clone(),
            display_name: dc.display_name,
            location: dc.location,
            create_time: Some(timestamp(dc.meta.create_time)),
            update_time: Some(timestamp(dc.meta.update_time)),
            etag: dc.meta.etag(),
            // Filled from the agent record by the API, which knows the link's state.
            agent: None,
        }
    }
}

impl From<d::Project> for pb::Project {
    fn from(p: d::Project) -> Self {
        Self {
            name: p.name.to_string(),
            uid: p.meta.uid.clone(),
            display_name: p.display_name,
            default_datacenter: p.default_datacenter.to_string(),
            create_time: Some(timestamp(p.meta.create_time)),
            update_time: Some(timestamp(p.meta.update_time)),
            etag: p.meta.etag(),
        }
    }
}

impl From<d::Environment> for pb::Environment {
    fn from(e: d::Environment) -> Self {
        Self {
            name: e.name.to_string(),
            uid: e.meta.uid.clone(),
            display_name: e.display_name,
            datacenter: e.datacenter.to_string(),
            first_deploy_time: e.first_deploy_time.map(timestamp),
            create_time: Some(timestamp(e.meta.create_time)),
            update_time: Some(timestamp(e.meta.update_time)),
            etag: e.meta.etag(),
            datacenter_unreachable: None,
        }
    }
}

fn shape(s: Shape) -> pb::Shape {
    match s {
        Shape::Flx => pb::Shape::Flx,
        Shape::Max => pb::Shape::Max,
        Shape::Pwr => pb::Shape::Pwr,
    }
}

fn from_shape(n: i32) -> Option<Shape> {
    match pb::Shape::try_from(n).ok()? {
        pb::Shape::Unspecified => None,
        pb::Shape::Flx => Some(Shape::Flx),
        pb::Shape::Max => Some(Shape::Max),
        pb::Shape::Pwr => Some(Shape::Pwr),
    }
}

impl From<d::Service> for pb::Service {
    fn from(s: d::Service) -> Self {
        let deployment = |n: i64| {
            if n > 0 {
                outpost_domain::DeploymentName::new(&s.name, n).to_string()
            } else {
                String::new()
            }
        };
        Self {
            name: s.name.to_string(),
            uid: s.meta.uid.clone(),
            create_time: Some(timestamp(s.meta.create_time)),
            update_time: Some(timestamp(s.meta.update_time)),
            etag: s.meta.etag(),
            state: by_name(
                "SERVICE_STATE_",
                s.rollout.status.as_str(),
                pb::ServiceState::from_str_name,
            ),
            state_message: s.rollout.message.clone(),
            live_deployment: deployment(s.rollout.live_deployment),
            current_deployment: deployment(s.rollout.current_deployment),
            ..s.spec.into()
        }
    }
}

/// The wire enum value spelled `{prefix}{name}`: domain and wire enums share their names,
/// so one lookup serves every enum.
fn by_name<E: Into<i32>>(prefix: &str, name: &str, from: impl Fn(&str) -> Option<E>) -> i32 {
    from(&format!("{prefix}{name}")).map_or(0, Into::into)
}

/// The domain value named by wire value `wire` (`DEPLOYMENT_STATUS_LIVE` is `LIVE`): the
/// other way of [`by_name`]; `None` for UNSPECIFIED.
fn from_wire<T>(wire: &str, prefix: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    parse(wire.strip_prefix(prefix)?)
}

impl From<outpost_domain::deployment::EnvironmentStatus> for pb::EnvironmentState {
    fn from(s: outpost_domain::deployment::EnvironmentStatus) -> Self {
        pb::EnvironmentState::try_from(by_name(
            "ENVIRONMENT_STATE_",
            s.as_str(),
            pb::EnvironmentState::from_str_name,
        ))
        .unwrap_or_default()
    }
}

impl TryFrom<pb::EnvironmentState> for outpost_domain::deployment::EnvironmentStatus {
    type Error = ();
    fn try_from(s: pb::EnvironmentState) -> Result<Self, ()> {
        from_wire(s.as_str_name(), "ENVIRONMENT_STATE_", Self::parse).ok_or(())
    }
}

impl TryFrom<pb::DeploymentStatus> for outpost_domain::deployment::DeploymentStatus {
    type Error = ();
    fn try_from(s: pb::DeploymentStatus) -> Result<Self, ()> {
        from_wire(s.as_str_name(), "DEPLOYMENT_STATUS_", Self::parse).ok_or(())
    }
}

impl TryFrom<pb::ManagedServiceState> for outpost_domain::managed::ManagedStatus {
    type Error = ();
    fn try_from(s: pb::ManagedServiceState) -> Result<Self, ()> {
        from_wire(s.as_str_name(), "MANAGED_SERVICE_STATE_", Self::parse).ok_or(())
    }
}

impl From<d::ServiceSpec> for pb::Service {
    /// The spec fields only (as in a deployment's spec).
    fn from(spec: d::ServiceSpec) -> Self {
        Self {
            display_name: spec.display_name,
            source: match spec.source {
                d::Source::Unset => None,
                d::Source::Image(image) => Some(pb::service::Source::Image(image)),
                d::Source::Git(git) => Some(pb::service::Source::Git(pb::GitSource {
                    url: git.url,
                    r#ref: git.git_ref,
                    dockerfile_path: git.dockerfile_path,
                })),
            },
            shape: spec.shape.map(shape).unwrap_or_default().into(),
            replicas: i32::try_from(spec.replicas).unwrap_or(i32::MAX),
            env: spec
                .env
                .into_iter()
                .map(|e| pb::EnvVar {
                    name: e.name,
                    value: e.value,
                })
                .collect(),
            ports: spec
                .ports
                .into_iter()
                .map(|p| pb::Port {
                    container_port: i32::try_from(p.container_port).unwrap_or_default(),
                    protocol: match p.protocol {
                        d::Protocol::Tcp => pb::Protocol::Tcp,
                        d::Protocol::Udp => pb::Protocol::Udp,
                    }
                    .into(),
                    name: p.name,
                })
                .collect(),
            health_check_path: spec.health_check_path,
            // Filled from the agent's last report by the API.
            status: None,
            ..Default::default()
        }
    }
}

impl From<outpost_domain::managed::ManagedService> for pb::ManagedService {
    fn from(m: outpost_domain::managed::ManagedService) -> Self {
        Self {
            name: m.name.to_string(),
            uid: m.meta.uid.clone(),
            display_name: m.display_name,
            provider: format!("providers/{}", m.provider),
            config: Some(json::to_struct(&m.config)),
            state: by_name(
                "MANAGED_SERVICE_STATE_",
                m.status.as_str(),
                pb::ManagedServiceState::from_str_name,
            ),
            state_message: m.message,
            details: Some(json::to_struct(&m.details)),
            create_time: Some(timestamp(m.meta.create_time)),
            update_time: Some(timestamp(m.meta.update_time)),
            delete_time: m.delete_time.map(timestamp),
            etag: m.meta.etag(),
            datacenter_unreachable: None,
        }
    }
}

impl From<&outpost_domain::provider::Definition> for pb::Provider {
    fn from(d: &outpost_domain::provider::Definition) -> Self {
        let rule = |r: &outpost_domain::provider::UpdateRule| {
            let name = serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            by_name("UPDATE_RULE_", &name, pb::UpdateRule::from_str_name)
        };
        let needs = serde_json::to_value(d.needs)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            name: format!("providers/{}", d.name),
            version: d.version.clone(),
            display_name: d.display_name.clone(),
            category: by_name(
                "PROVIDER_CATEGORY_",
                d.category.as_str(),
                pb::ProviderCategory::from_str_name,
            ),
            description: d.description.clone(),
            needs: by_name("PROVIDER_NEEDS_", &needs, pb::ProviderNeeds::from_str_name),
            pausable: d.capabilities.pausable,
            backups: d.capabilities.backups,
            config_schema: Some(json::to_struct(&d.config_schema)),
            secrets_schema: Some(json::to_struct(&d.secrets_schema)),
            details_schema: Some(json::to_struct(&d.details_schema)),
            update_rules: d
                .update_rules
                .iter()
                .map(|(k, r)| (k.clone(), rule(r)))
                .collect(),
        }
    }
}

impl From<outpost_domain::lifecycle::Deployment> for pb::Deployment {
    fn from(dep: outpost_domain::lifecycle::Deployment) -> Self {
        Self {
            name: dep.name.to_string(),
            uid: dep.meta.uid.clone(),
            kind: by_name(
                "DEPLOYMENT_KIND_",
                dep.kind.as_str(),
                pb::DeploymentKind::from_str_name,
            ),
            origin: dep.origin,
            spec: Some(dep.spec.service.into()),
            image: dep.spec.image,
            status: by_name(
                "DEPLOYMENT_STATUS_",
                dep.status.as_str(),
                pb::DeploymentStatus::from_str_name,
            ),
            failure_reason: dep.reason.map_or(0, |r| {
                by_name(
                    "FAILURE_REASON_",
                    r.as_str(),
                    pb::FailureReason::from_str_name,
                )
            }),
            message: dep.message,
            actor: dep.actor,
            create_time: Some(timestamp(dep.meta.create_time)),
            update_time: Some(timestamp(dep.meta.update_time)),
            end_time: dep.end_time.map(timestamp),
            etag: dep.meta.etag(),
            history: dep
                .history
                .iter()
                .map(|(status, at)| pb::DeploymentStatusChange {
                    status: by_name(
                        "DEPLOYMENT_STATUS_",
                        status.as_str(),
                        pb::DeploymentStatus::from_str_name,
                    ),
                    time: Some(timestamp(*at)),
                })
                .collect(),
            datacenter_unreachable: None,
        }
    }
}

impl From<&pb::Service> for d::ServiceSpec {
    fn from(s: &pb::Service) -> Self {
        Self {
            display_name: s.display_name.clone(),
            source: match &s.source {
                None => d::Source::Unset,
                Some(pb::service::Source::Image(image)) => d::Source::Image(image.clone()),
                Some(pb::service::Source::Git(git)) => d::Source::Git(d::GitSource {
                    url: git.url.clone(),
                    git_ref: git.r#ref.clone(),
                    dockerfile_path: git.dockerfile_path.clone(),
                }),
            },
            shape: from_shape(s.shape),
            replicas: i64::from(s.replicas),
            env: s
                .env
                .iter()
                .map(|e| d::EnvVar {
                    name: e.name.clone(),
                    value: e.value.clone(),
                })
                .collect(),
            ports: s
                .ports
                .iter()
                .map(|p| d::Port {
                    container_port: i64::from(p.container_port),
                    // An unknown protocol number is treated as the default rather than
                    // refused: the enum has no other meaning to fall back to.
                    protocol: match pb::Protocol::try_from(p.protocol) {
                        Ok(pb::Protocol::Udp) => d::Protocol::Udp,
                        _ => d::Protocol::Tcp,
                    },
                    name: p.name.clone(),
                })
                .collect(),
            health_check_path: s.health_check_path.clone(),
        }
    }
}

impl From<&outpost_domain::observed::WorkloadStatus> for pb::ServiceStatus {
    fn from(s: &outpost_domain::observed::WorkloadStatus) -> Self {
        Self {
            phase: s.phase.as_str().to_owned(),
            message: s.message.clone(),
            ready_replicas: i32::try_from(s.ready_replicas).unwrap_or(i32::MAX),
            desired_replicas: i32::try_from(s.desired_replicas).unwrap_or(i32::MAX),
            observed_generation: s.observed_generation,
            report_time: Some(timestamp(s.report_time)),
            // Set by the API, which knows whether the agent's link is live.
            stale: false,
        }
    }
}

impl From<d::Event> for pb::Event {
    fn from(e: d::Event) -> Self {
        Self {
            name: format!("{}/events/{}", e.resource, e.id),
            resource: e.resource,
            reason: e.reason,
            message: e.message,
            actor: e.actor,
            create_time: Some(timestamp(e.create_time)),
        }
    }
}

impl From<d::AuditRecord> for pb::AuditRecord {
    fn from(r: d::AuditRecord) -> Self {
        Self {
            name: match &r.tenant {
                Some(t) => format!("tenants/{t}/auditRecords/{}", r.id),
                None => format!("auditRecords/{}", r.id),
            },
            actor: r.actor,
            method: r.method,
            target: r.target,
            result: r.result,
            peer: r.peer,
            request_id: r.request_id,
            create_time: Some(timestamp(r.create_time)),
        }
    }
}

#[cfg(test)]
mod tests {
    use outpost_domain::{
        deployment::{DeploymentStatus, FailureReason, ServiceAction, ServiceStatus},
        lifecycle::{Deployment, DeploymentSpec},
    };

    use super::*;

    /// Domain and wire enums share their names; a value with no wire twin would show as
    /// UNSPECIFIED, so every one is checked.
    #[test]
    fn every_lifecycle_value_has_its_wire_twin() {
        for s in ServiceStatus::ALL {
            assert_ne!(
                by_name(
                    "SERVICE_STATE_",
                    s.as_str(),
                    pb::ServiceState::from_str_name
                ),
                0,
                "{s}"
            );
        }
        for s in DeploymentStatus::ALL {
            assert_ne!(
                by_name(
                    "DEPLOYMENT_STATUS_",
                    s.as_str(),
                    pb::DeploymentStatus::from_str_name
                ),
                0,
                "{s}"
            );
        }
        for r in FailureReason::ALL {
            assert_ne!(
                by_name(
                    "FAILURE_REASON_",
                    r.as_str(),
                    pb::FailureReason::from_str_name
                ),
                0,
                "{r}"
            );
        }
        for k in [
            ServiceAction::Deploy,
            ServiceAction::Redeploy,
            ServiceAction::Rollback,
            ServiceAction::Promote,
        ] {
            assert_ne!(
                by_name(
                    "DEPLOYMENT_KIND_",
                    k.as_str(),
                    pb::DeploymentKind::from_str_name
                ),
                0,
                "{k:?}"
            );
        }
        for e in outpost_domain::deployment::EnvironmentStatus::ALL {
            assert_ne!(
                by_name(
                    "ENVIRONMENT_STATE_",
                    e.as_str(),
                    pb::EnvironmentState::from_str_name
                ),
                0,
                "{e:?}"
            );
        }
        // And back, for the enums whose wire values a watch reads.
        for e in outpost_domain::deployment::EnvironmentStatus::ALL {
            assert_eq!(
                outpost_domain::deployment::EnvironmentStatus::try_from(
                    pb::EnvironmentState::from(e)
                ),
                Ok(e)
            );
        }
        for s in DeploymentStatus::ALL {
            let wire = pb::DeploymentStatus::try_from(by_name(
                "DEPLOYMENT_STATUS_",
                s.as_str(),
                pb::DeploymentStatus::from_str_name,
            ))
            .expect("a wire value");
            assert_eq!(DeploymentStatus::try_from(wire), Ok(s));
        }
        assert!(DeploymentStatus::try_from(pb::DeploymentStatus::Unspecified).is_err());
        let d = Deployment {
            name: outpost_domain::DeploymentName::parse(
                "tenants/t/projects/p/environments/e/services/s/deployments/3",
            )
            .expect("name"),
            kind: ServiceAction::Rollback,
            origin: "x".into(),
            spec: DeploymentSpec {
                image: "web:1".into(),
                ..Default::default()
            },
            status: DeploymentStatus::DeploymentError,
            reason: Some(FailureReason::CrashLoop),
            message: "m".into(),
            generation: 2,
            history: vec![(DeploymentStatus::Queued, Timestamp(1))],
            actor: "a".into(),
            end_time: Some(Timestamp(5)),
            meta: d::Meta {
                uid: "u".into(),
                create_time: Timestamp(1),
                update_time: Timestamp(2),
                version: 3,
            },
        };
        for provider in outpost_domain::provider::Catalog::with(&[])
            .expect("built-ins")
            .all()
        {
            let wire = pb::Provider::from(&provider.definition);
            assert_ne!(wire.category, 0);
            assert_ne!(wire.needs, 0);
            assert!(wire.update_rules.values().all(|r| *r != 0), "{wire:?}");
        }
        let wire = pb::Deployment::from(d);
        assert_eq!(wire.status(), pb::DeploymentStatus::DeploymentError);
        assert_eq!(wire.failure_reason(), pb::FailureReason::CrashLoop);
        assert_eq!(wire.kind(), pb::DeploymentKind::Rollback);
        assert_eq!(wire.image, "web:1");
    }
}
