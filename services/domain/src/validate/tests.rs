use super::*;
use crate::{
    Shape,
    resources::{EnvVar, Protocol},
};

fn good_spec() -> ServiceSpec {
    ServiceSpec {
        display_name: "API".into(),
        source: Source::Image("registry.example.com/shop/api:1.4.2".into()),
        shape: Some(Shape::Flx),
        replicas: 2,
        env: vec![EnvVar {
            name: "RUST_LOG".into(),
            value: "info".into(),
        }],
        ports: vec![Port {
            container_port: 8080,
            protocol: Protocol::Tcp,
            name: "http".into(),
        }],
        health_check_path: "/healthz".into(),
    }
}

fn fields(spec: &ServiceSpec) -> Vec<String> {
    let mut v = Violations::default();
    service_spec(&mut v, "service", spec);
    v.0.into_iter().map(|f| f.field).collect()
}

#[test]
fn a_good_spec_passes() {
    assert_eq!(fields(&good_spec()), Vec::<String>::new());
    for image in [
        "nginx",
        "nginx:1.27",
        "ghcr.io/a/b/c:v1",
        &format!("nginx@sha256:{}", "a".repeat(64)),
    ] {
        let spec = ServiceSpec {
            source: Source::Image(image.into()),
            ..good_spec()
        };
        assert_eq!(fields(&spec), Vec::<String>::new(), "{image}");
    }
}

#[test]
fn each_bad_field_is_named() {
    let cases: Vec<(ServiceSpec, &str)> = vec![
        (
            ServiceSpec {
                source: Source::Unset,
                ..good_spec()
            },
            "service.image",
        ),
        (
            ServiceSpec {
                source: Source::Image("Not An Image!".into()),
                ..good_spec()
            },
            "service.image",
        ),
        (
            ServiceSpec {
                source: Source::Image("x".repeat(600)),
                ..good_spec()
            },
            "service.image",
        ),
        (
            ServiceSpec {
                source: Source::Git(GitSource {
                    url: "file:///etc/passwd".into(),
                    ..Default::default()
                }),
                ..good_spec()
            },
            "service.git.url",
        ),
        (
            ServiceSpec {
                source: Source::Git(GitSource {
                    url: "https://git.example.com/a.git".into(),
                    dockerfile_path: "../../etc/Dockerfile".into(),
                    ..Default::default()
                }),
                ..good_spec()
            },
            "service.git.dockerfile_path",
        ),
        (
            ServiceSpec {
                shape: None,
                ..good_spec()
            },
            "service.shape",
        ),
        (
            ServiceSpec {
                replicas: 0,
                ..good_spec()
            },
            "service.replicas",
        ),
        (
            ServiceSpec {
                replicas: -5,
                ..good_spec()
            },
            "service.replicas",
        ),
        (
            ServiceSpec {
                replicas: i64::from(i32::MAX),
                ..good_spec()
            },
            "service.replicas",
        ),
        (
            ServiceSpec {
                env: vec![EnvVar {
                    name: "1BAD".into(),
                    value: String::new(),
                }],
                ..good_spec()
            },
            "service.env[0].name",
        ),
        (
            ServiceSpec {
                env: vec![
                    EnvVar {
                        name: "A".into(),
                        value: String::new(),
                    },
                    EnvVar {
                        name: "A".into(),
                        value: String::new(),
                    },
                ],
                ..good_spec()
            },
            "service.env[1].name",
        ),
        (
            ServiceSpec {
                env: vec![EnvVar {
                    name: "A".into(),
                    value: "x".repeat(40_000),
                }],
                ..good_spec()
            },
            "service.env[0].value",
        ),
        (
            ServiceSpec {
                ports: vec![Port {
                    container_port: 70000,
                    protocol: Protocol::Tcp,
                    name: String::new(),
                }],
                ..good_spec()
            },
            "service.ports[0].container_port",
        ),
        (
            ServiceSpec {
                ports: vec![Port {
                    container_port: -1,
                    protocol: Protocol::Udp,
                    name: String::new(),
                }],
                ..good_spec()
            },
            "service.ports[0].container_port",
        ),
        (
            ServiceSpec {
                health_check_path: "healthz".into(),
                ..good_spec()
            },
            "service.health_check_path",
        ),
        (
            ServiceSpec {
                health_check_path: "/../admin".into(),
                ..good_spec()
            },
            "service.health_check_path",
        ),
        (
            ServiceSpec {
                health_check_path: "/a b".into(),
                ..good_spec()
            },
            "service.health_check_path",
        ),
        (
            ServiceSpec {
                display_name: "evil\u{202e}txt".into(),
                ..good_spec()
            },
            "service.display_name",
        ),
        (
            ServiceSpec {
                display_name: "x".repeat(101),
                ..good_spec()
            },
            "service.display_name",
        ),
    ];
    for (spec, field) in cases {
        assert_eq!(fields(&spec), vec![field.to_string()], "{spec:?}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let spec = ServiceSpec {
        source: Source::Unset,
        shape: None,
        replicas: 0,
        health_check_path: "x".into(),
        ..good_spec()
    };
    assert_eq!(fields(&spec).len(), 4);
}

#[test]
fn every_bidi_control_is_refused() {
    // Unicode's whole Bidi_Control set (PropList.txt), not only the General Punctuation ones.
    let bidi = [
        '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}',
    ];
    for c in bidi {
        let mut v = Violations::default();
        display_name(&mut v, "d", &format!("a{c}b"));
        assert_eq!(v.0.len(), 1, "U+{:04X}", u32::from(c));
    }
}

#[test]
fn emails_and_members() {
    let mut v = Violations::default();
    email(&mut v, "e", "a@example.com");
    email(&mut v, "e", "");
    assert!(v.is_empty());
    email(&mut v, "e", "nope");
    email(&mut v, "e", "a@b@c.d");
    assert_eq!(v.0.len(), 2);
    let mut v = Violations::default();
    team_members(
        &mut v,
        "m",
        "acme",
        &[
            "tenants/acme/users/a".into(),
            "tenants/other/users/b".into(),
        ],
    );
    assert_eq!(v.0.len(), 1);
}

proptest::proptest! {
    #[test]
    fn validation_never_panics(image in ".{0,600}", path in ".{0,50}", name in ".{0,300}", replicas: i64, port: i64) {
        let spec = ServiceSpec {
            display_name: name.clone(),
            source: Source::Image(image),
            replicas,
            env: vec![EnvVar { name, value: String::new() }],
            ports: vec![Port { container_port: port, protocol: Protocol::Tcp, name: path.clone() }],
            health_check_path: path,
            ..good_spec()
        };
        let mut v = Violations::default();
        service_spec(&mut v, "service", &spec);
    }
}
