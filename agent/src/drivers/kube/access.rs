//! What the agent does in a cluster, as RBAC rules. `outpost-agent install` grants exactly
//! these, and a test drives every call of the Kubernetes driver against the simulated
//! cluster and checks that the calls need all of them and nothing more.

use k8s_openapi::api::rbac::v1::PolicyRule;

/// Verbs on a resource the agent owns: listed to observe it, applied server-side (which the
/// API server authorizes as `patch`, and also as `create` when the apply creates the
/// object), deleted when no longer desired.
const OWNED: &[&str] = &["create", "delete", "list", "patch"];

/// One RBAC rule: `verbs` on `resources` of API group `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// Resources, with a subresource after a slash (`pods/log`).
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
}

/// Everything the agent's Kubernetes driver does, cluster-wide: it places each environment
/// in a namespace of its own.
pub const RULES: &[Rule] = &[
    Rule {
        group: "",
        resources: &["namespaces", "persistentvolumeclaims", "services"],
        verbs: OWNED,
    },
    // Written and deleted, never read: the agent has no reason to read back a secret.
    Rule {
        group: "",
        resources: &["secrets"],
        verbs: &["create", "delete", "patch"],
    },
    // Pods: to judge rollouts and find the containers whose logs are asked for.
    Rule {
        group: "",
        resources: &["pods"],
        verbs: &["list"],
    },
    Rule {
        group: "",
        resources: &["pods/log"],
        verbs: &["get"],
    },
    // Nodes: the cluster's allocatable CPU and memory.
    Rule {
        group: "",
        resources: &["nodes"],
        verbs: &["list"],
    },
    Rule {
        group: "apps",
        resources: &["deployments", "statefulsets"],
        verbs: OWNED,
    },
    Rule {
        group: "batch",
        resources: &["jobs"],
        verbs: OWNED,
    },
];

/// [`RULES`] as a ClusterRole's rules.
pub fn policy_rules() -> Vec<PolicyRule> {
    RULES
        .iter()
        .map(|r| PolicyRule {
            api_groups: Some(vec![r.group.to_owned()]),
            resources: Some(r.resources.iter().map(|&s| s.to_owned()).collect()),
            verbs: r.verbs.iter().map(|&s| s.to_owned()).collect(),
            ..Default::default()
        })
        .collect()
}

/// Every (verb, group, resource) [`RULES`] grant.
pub fn granted() -> std::collections::BTreeSet<(&'static str, &'static str, &'static str)> {
    RULES
        .iter()
        .flat_map(|r| {
            r.resources
                .iter()
                .flat_map(move |&res| r.verbs.iter().map(move |&verb| (verb, r.group, res)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use kube::api::LogParams;
    use outpost_domain::{desired::Workload, provider::Run, resources::EnvVar};

    use super::*;
    use crate::{drivers::kube::logs::PodLogs, fixtures, plan::Action};

    fn secret(name: &str) -> Vec<EnvVar> {
        vec![EnvVar {
            name: name.into(),
            value: "s3cr3t".into(),
        }]
    }

    /// Every action of the driver, each kind of object created, then every one deleted.
    fn every_action() -> Vec<Action> {
        let workload = Workload {
            secrets: secret("API_KEY"),
            replicas: 1,
            ..fixtures::workload("web")
        };
        let mut managed = fixtures::stateful("db");
        if let Run::Stateful(run) = &mut managed.run {
            run.secrets = secret("POSTGRES_PASSWORD");
        }
        let build = fixtures::build(&workload.name, 2);
        vec![
            Action::ApplyNamespace(fixtures::namespace()),
            Action::ApplyWorkload(workload.clone()),
            // Without secrets now: its Secret is deleted.
            Action::ApplyWorkload(Workload {
                secrets: vec![],
                ..workload
            }),
            Action::ApplyManaged(managed),
            Action::ApplyBuild(build.clone()),
            Action::DeleteBuild {
                namespace: "ns".into(),
                name: build.job_name(),
            },
            Action::DeleteWorkload {
                namespace: "ns".into(),
                name: "web".into(),
            },
            Action::DeleteManaged {
                namespace: "ns".into(),
                name: "db".into(),
                with_data: true,
            },
            Action::DeleteNamespace("ns".into()),
        ]
    }

    #[tokio::test]
    async fn the_driver_needs_exactly_what_the_rules_grant() {
        let (sim, cluster) = fixtures::cluster();
        let logs = PodLogs::new(sim.client());
        let actions = every_action();
        for action in &actions[..5] {
            cluster.execute(action).await.expect("applied");
        }
        sim.settle().expect("the cluster settles");
        cluster.observe().await.expect("observed");
        assert!(cluster.capacity().await.cpu_millis > 0, "nodes listed");
        let targets = logs
            .targets("ns", "web", None, None)
            .await
            .expect("pods listed");
        let target = targets.first().expect("a pod of web");
        logs.open("ns", target, &LogParams::default())
            .await
            .expect("its log read");
        for action in &actions[5..] {
            cluster.execute(action).await.expect("applied");
        }

        let used: BTreeSet<(&str, &str, String)> = sim
            .requests()
            .into_iter()
            .map(|a| (a.verb, a.group, a.resource))
            .collect();
        let granted: BTreeSet<(&str, &str, String)> = granted()
            .into_iter()
            .map(|(verb, group, resource)| (verb, group, resource.to_owned()))
            .collect();
        let missing: Vec<_> = used.difference(&granted).collect();
        assert!(missing.is_empty(), "used but not granted: {missing:?}");
        let unused: Vec<_> = granted.difference(&used).collect();
        assert!(unused.is_empty(), "granted but never used: {unused:?}");
    }
}
