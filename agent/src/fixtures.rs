//! Desired objects for tests, one definition each: tests change what they are about with
//! struct update syntax and keep the rest.

use outpost_kube_sim::{Sim, SimConfig};

use crate::{
    drivers::kube::{KubeCluster, build::BuildSettings},
    plan::Rollout,
};
use outpost_domain::{
    EnvironmentName, ManagedServiceName, ServiceName,
    desired::{Build, ManagedWorkload, NamespaceSpec, Workload},
    provider::{Run, StatefulRun},
    resources::GitSource,
};

/// Environment `tenants/t/projects/p/environments/e`'s namespace, `ns`.
pub fn namespace() -> NamespaceSpec {
    NamespaceSpec {
        name: "ns".into(),
        environment: EnvironmentName::parse("tenants/t/projects/p/environments/e").expect("name"),
    }
}

/// Service `name` in namespace `ns`: generation 1, two replicas of
/// `registry.example.com/{name}:1`, no env vars, ports or secrets.
pub fn workload(name: &str) -> Workload {
    Workload {
        service: ServiceName::parse(&format!(
            "tenants/t/projects/p/environments/e/services/{name}"
        ))
        .expect("name"),
        namespace: "ns".into(),
        name: name.into(),
        generation: 1,
        image: format!("registry.example.com/{name}:1"),
        cpu_millis: 250,
        memory_mib: 512,
        replicas: 2,
        env: vec![],
        ports: vec![],
        health_check_path: String::new(),
        secrets: vec![],
        restart_time: 0,
    }
}

/// Deployment `deployment` of service `name` in namespace `ns`, built from
/// `https://git.example.com/shop/{name}.git`'s default branch.
pub fn build(name: &str, deployment: i64) -> Build {
    Build {
        service: workload(name).service,
        deployment,
        namespace: "ns".into(),
        source: GitSource {
            url: format!("https://git.example.com/shop/{name}.git"),
            ..Default::default()
        },
    }
}

/// Managed service `name` in namespace `ns`: PostgreSQL 16 on a 1 GiB volume, generation 1.
pub fn stateful(name: &str) -> ManagedWorkload {
    ManagedWorkload {
        service: ManagedServiceName::parse(&format!(
            "tenants/t/projects/p/environments/e/managedServices/{name}"
        ))
        .expect("name"),
        uid: "u".into(),
        namespace: "ns".into(),
        name: name.into(),
        generation: 1,
        run: Run::Stateful(StatefulRun {
            image: "postgres:16".into(),
            port: 5432,
            cpu_millis: 250,
            memory_mib: 512,
            storage_gib: Some(1),
            data_path: "/data".into(),
            env: vec![],
            secrets: vec![],
            args: vec![],
        }),
        paused: false,
        deleting: false,
        details: Default::default(),
    }
}

/// A simulated cluster stepped only when a test says, and the agent's driver for it with
/// default settings.
pub fn cluster() -> (Sim, KubeCluster) {
    let sim = Sim::start(SimConfig::explicit()).expect("sim");
    let cluster = driver(&sim, Rollout::default());
    (sim, cluster)
}

/// The agent's driver for `sim`, judging rollouts by `rollout`.
pub fn driver(sim: &Sim, rollout: Rollout) -> KubeCluster {
    KubeCluster::new(
        sim.client(),
        rollout,
        BuildSettings::default(),
        Default::default(),
        None,
    )
    // Secrets compared every pass: tests need not wait for drift in them to be found.
    .with_recheck(std::time::Duration::ZERO)
}
