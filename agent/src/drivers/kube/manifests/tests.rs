//! The manifests, field by field.

use outpost_domain::{
    EnvironmentName, ServiceName,
    desired::{NamespaceSpec, Workload},
    resources::{EnvVar, Port, Protocol},
};

use super::*;
use crate::drivers::kube::images::ImageSource;

fn workload() -> Workload {
    Workload {
        service: ServiceName::parse(
            "tenants/acme/projects/shop/environments/production/services/api",
        )
        .expect("name"),
        namespace: "acme-shop-production-1234abcd".into(),
        name: "api".into(),
        generation: 7,
        image: "registry.example.com/shop/api:1.4.2".into(),
        cpu_millis: 250,
        memory_mib: 512,
        replicas: 3,
        env: vec![EnvVar {
            name: "LOG_LEVEL".into(),
            value: "info".into(),
        }],
        ports: vec![
            Port {
                container_port: 8080,
                protocol: Protocol::Tcp,
                name: "http".into(),
            },
            Port {
                container_port: 9000,
                protocol: Protocol::Udp,
                name: String::new(),
            },
        ],
        health_check_path: "/healthz".into(),
        secrets: vec![],
        restart_time: 0,
    }
}

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

#[test]
fn deployments_roll_out_without_downtime_and_are_marked_as_owned() {
    let d = deployment(&workload(), DEADLINE, &ImageSource::default());
    let meta = &d.metadata;
    assert_eq!(meta.name.as_deref(), Some("api"));
    assert_eq!(
        meta.namespace.as_deref(),
        Some("acme-shop-production-1234abcd")
    );
    let labels = meta.labels.as_ref().expect("labels");
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("outpost-agent")
    );
    assert_eq!(
        labels.get("outpost.dev/workload").map(String::as_str),
        Some("api")
    );
    let annotations = meta.annotations.as_ref().expect("annotations");
    assert_eq!(
        annotations.get(GENERATION_ANNOTATION).map(String::as_str),
        Some("7")
    );
    assert_eq!(
        annotations.get(SERVICE_ANNOTATION).map(String::as_str),
        Some("tenants/acme/projects/shop/environments/production/services/api")
    );

    let spec = d.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(3));
    let strategy = spec.strategy.as_ref().expect("strategy");
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let rolling = strategy.rolling_update.as_ref().expect("rolling update");
    assert_eq!(
        rolling.max_unavailable,
        Some(IntOrString::Int(0)),
        "the old version serves until the new one is ready"
    );
    assert_eq!(rolling.max_surge, Some(IntOrString::Int(1)));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    assert_eq!(
        spec.selector.match_labels,
        spec.template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
    );

    let container = &spec.template.spec.as_ref().expect("pod spec").containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example.com/shop/api:1.4.2")
    );
    let probe = container
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .expect("readiness probe");
    assert_eq!(probe.path.as_deref(), Some("/healthz"));
    assert_eq!(
        probe.port,
        IntOrString::Int(8080),
        "probes the first TCP port"
    );
    let resources = container.resources.as_ref().expect("resources");
    for set in [&resources.requests, &resources.limits] {
        let set = set.as_ref().expect("requests and limits");
        assert_eq!(
            set.get("cpu"),
            Some(&Quantity("250m".into())),
            "FLX is a quarter CPU"
        );
        assert_eq!(set.get("memory"), Some(&Quantity("512Mi".into())));
    }
    let env = container.env.as_ref().expect("env");
    assert_eq!(
        (env[0].name.as_str(), env[0].value.as_deref()),
        ("LOG_LEVEL", Some("info"))
    );
    let ports = container.ports.as_ref().expect("ports");
    assert_eq!(ports.len(), 2);
    assert_eq!(
        (ports[1].container_port, ports[1].protocol.as_deref()),
        (9000, Some("UDP"))
    );
}

#[test]
fn no_health_path_means_no_probe() {
    let mut w = workload();
    w.health_check_path.clear();
    let d = deployment(&w, DEADLINE, &ImageSource::default());
    assert!(
        d.spec.expect("spec").template.spec.expect("pod").containers[0]
            .readiness_probe
            .is_none()
    );
}

#[test]
fn services_select_the_workloads_pods() {
    let w = workload();
    let s = service(&w);
    let spec = s.spec.expect("spec");
    let pod_labels = deployment(&w, DEADLINE, &ImageSource::default())
        .spec
        .expect("spec")
        .template
        .metadata
        .expect("meta")
        .labels;
    assert_eq!(spec.selector, pod_labels);
    let ports = spec.ports.expect("ports");
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    assert_eq!(ports[1].name.as_deref(), Some("port-1"));
    assert_eq!(
        s.metadata
            .labels
            .expect("labels")
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("outpost-agent")
    );
}

#[test]
fn namespaces_carry_their_environment() {
    let ns = namespace(&NamespaceSpec {
        name: "acme-shop-production-1234abcd".into(),
        environment: EnvironmentName::parse("tenants/acme/projects/shop/environments/production")
            .expect("name"),
    });
    let annotations = ns.metadata.annotations.expect("annotations");
    assert_eq!(
        annotations.get(ENVIRONMENT_ANNOTATION).map(String::as_str),
        Some("tenants/acme/projects/shop/environments/production")
    );
}

#[test]
fn quantities_parse() {
    assert_eq!(parse_cpu_millis("2"), Some(2000));
    assert_eq!(parse_cpu_millis("500m"), Some(500));
    assert_eq!(parse_cpu_millis("1.5"), Some(1500));
    assert_eq!(parse_bytes("16Gi"), Some(16 << 30));
    assert_eq!(parse_bytes("1000k"), Some(1_000_000));
    assert_eq!(parse_bytes("1.5Gi"), Some(3 << 29));
    assert_eq!(parse_bytes("123"), Some(123));
    assert_eq!(parse_bytes("x"), None);
}

#[test]
fn secrets_go_to_a_secret_and_reach_the_container_by_reference_only() {
    let mut w = workload();
    assert!(secret(&w).is_none(), "no secrets, no Secret");
    w.secrets = vec![EnvVar {
        name: "DB_PASSWORD".into(),
        value: "hunter2".into(),
    }];
    let s = secret(&w).expect("a Secret");
    assert_eq!(s.metadata.name.as_deref(), Some("api-secrets"));
    assert_eq!(
        s.string_data
            .as_ref()
            .and_then(|d| d.get("DB_PASSWORD"))
            .map(String::as_str),
        Some("hunter2")
    );
    assert_eq!(
        s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/managed-by"))
            .map(String::as_str),
        Some("outpost-agent")
    );
    let d = deployment(&w, DEADLINE, &ImageSource::default());
    let text = serde_json::to_string(&d).expect("json");
    assert!(
        !text.contains("hunter2"),
        "the value stays out of the Deployment"
    );
    let env = d.spec.expect("spec").template.spec.expect("pod").containers[0]
        .env
        .clone()
        .expect("env");
    let by_ref = env
        .iter()
        .find(|e| e.name == "DB_PASSWORD")
        .expect("secret env");
    let key = by_ref
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("secretKeyRef");
    assert_eq!(
        (key.name.as_str(), key.key.as_str()),
        ("api-secrets", "DB_PASSWORD")
    );
}

#[test]
fn a_restart_request_changes_the_pod_template_and_nothing_else() {
    let mut w = workload();
    let template = |w: &Workload| {
        deployment(w, DEADLINE, &ImageSource::default())
            .spec
            .expect("spec")
            .template
    };
    assert!(
        template(&w).metadata.expect("meta").annotations.is_none(),
        "never restarted: no annotation, so the template is unchanged"
    );
    w.restart_time = 1_700_000_000_000;
    let annotations = template(&w)
        .metadata
        .expect("meta")
        .annotations
        .expect("annotations");
    assert_eq!(
        annotations
            .get("kubectl.kubernetes.io/restartedAt")
            .map(String::as_str),
        Some("2023-11-14T22:13:20Z")
    );
    assert_eq!(
        deployment(
            &w,
            std::time::Duration::from_secs(5),
            &ImageSource::default(),
        )
        .spec
        .expect("spec")
        .progress_deadline_seconds,
        Some(5)
    );
}
