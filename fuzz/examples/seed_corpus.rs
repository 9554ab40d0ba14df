//! Writes a few valid requests to `corpus/request_validation/`, so fuzzing starts from inputs
//! that reach the accepted-value invariants instead of having to discover a whole valid
//! service first. Run from `fuzz/`: `cargo run --example seed_corpus`.

use std::{fs, path::Path};

use outpost_proto::management::v1 as pb;
use prost::Message;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/request_validation");
    fs::create_dir_all(&dir)?;
    let service = pb::Service {
        display_name: "API".into(),
        source: Some(pb::service::Source::Image(
            "registry.example.com/shop/api:1.4.2".into(),
        )),
        shape: pb::Shape::Flx.into(),
        replicas: 2,
        env: vec![pb::EnvVar {
            name: "RUST_LOG".into(),
            value: "info".into(),
        }],
        ports: vec![pb::Port {
            container_port: 8080,
            protocol: pb::Protocol::Tcp.into(),
            name: "http".into(),
        }],
        health_check_path: "/healthz?full=1".into(),
        ..Default::default()
    };
    let git = pb::Service {
        source: Some(pb::service::Source::Git(pb::GitSource {
            url: "https://git.example.com/shop/api.git".into(),
            r#ref: "main".into(),
            dockerfile_path: "deploy/Dockerfile".into(),
        })),
        ports: vec![pb::Port {
            container_port: 53,
            protocol: pb::Protocol::Udp.into(),
            name: "dns".into(),
        }],
        ..service.clone()
    };
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "create_service_image",
            pb::CreateServiceRequest {
                parent: "tenants/acme/projects/shop/environments/production".into(),
                service: Some(service),
                service_id: "api".into(),
                request_id: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "create_service_git",
            pb::CreateServiceRequest {
                parent: "tenants/acme/projects/shop/environments/staging".into(),
                service: Some(git),
                service_id: "worker-1".into(),
                request_id: "r1".into(),
            }
            .encode_to_vec(),
        ),
        (
            "update_team",
            pb::UpdateTeamRequest {
                team: Some(pb::Team {
                    name: "tenants/acme/teams/ops".into(),
                    display_name: "Operations".into(),
                    members: vec![
                        "tenants/acme/users/alice".into(),
                        "tenants/acme/users/bob".into(),
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "create_user",
            pb::CreateUserRequest {
                parent: "tenants/acme".into(),
                user: Some(pb::User {
                    display_name: "Alice".into(),
                    email: "alice@example.com".into(),
                    ..Default::default()
                }),
                user_id: "alice".into(),
                request_id: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "create_platform_user",
            pb::CreateUserRequest {
                user: Some(pb::User {
                    display_name: "Root".into(),
                    ..Default::default()
                }),
                user_id: "root".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            // Regression: U+061C, a bidi control the display-name check once let through.
            "create_user_arabic_letter_mark",
            pb::CreateUserRequest {
                user: Some(pb::User {
                    display_name: "a\u{061C}b".into(),
                    ..Default::default()
                }),
                user_id: "alm".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "name_service",
            b"tenants/acme/projects/shop/environments/production/services/api".to_vec(),
        ),
        (
            "name_token",
            b"tenants/acme/users/bob/apiTokens/ci".to_vec(),
        ),
        ("name_platform_token", b"users/root/apiTokens/t1".to_vec()),
        ("name_datacenter", b"datacenters/fra-1".to_vec()),
    ];
    for (file, bytes) in seeds {
        fs::write(dir.join(file), bytes)?;
    }
    Ok(())
}
