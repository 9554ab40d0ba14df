//! The public API over TLS, with the real grpcurl: a certificate from the internal CA (the
//! README's `-cacert` line, run verbatim), and the operator's own certificate with client
//! certificates required. Plaintext and unverified clients are refused.

use std::{
    path::Path,
    process::{Command, Output},
    time::{Duration, SystemTime},
};

use outpost_ca::{AgentKey, CertificateAuthority};
use outpost_domain::names::DatacenterName;
use outpost_e2e::{Management, grpcurl, markdown_commands};

const LIST: &str = "outpost.management.v1.DatacenterService/ListDatacenters";

fn grpcurl_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(grpcurl())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running grpcurl")
}

fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_readme_grpcurl_line_works_against_a_certificate_from_the_internal_ca() {
    let server = Management::start(&[("OUTPOST_API__TLS__HOSTNAMES", r#"["localhost"]"#)])
        .expect("management starts");
    assert_eq!(server.process.ready["api_tls"], true);
    let port = server.api.rsplit(':').next().expect("port");
    let token = server.admin_token();

    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    let commands = markdown_commands(&readme, "tls");
    assert!(!commands.is_empty(), "no tls block in the README");
    for command in commands {
        let line = command.replace("localhost:7070", &format!("localhost:{port}"));
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -o pipefail\n{line}"))
            .current_dir(&server.dir)
            .env("TOKEN", &token)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    grpcurl().parent().expect("dir").display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .output()
            .expect("bash");
        assert!(out.status.success(), "{command}\n{}", both(&out));
    }

    let address = format!("localhost:{port}");
    let plaintext = grpcurl_in(&server.dir, &["-plaintext", &address, "list"]);
    assert!(!plaintext.status.success(), "{}", both(&plaintext));
    let unverified = grpcurl_in(&server.dir, &[&address, "list"]);
    assert!(!unverified.status.success(), "{}", both(&unverified));
    assert!(
        both(&unverified).contains("certificate"),
        "{}",
        both(&unverified)
    );
    server.stop(&[]).expect("clean stop");
}

#[test]
fn an_operators_certificate_serves_and_client_certificates_are_required() {
    let dir = tempfile::tempdir().expect("dir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf-8").to_owned()
    };
    let now = SystemTime::now();
    let year = Duration::from_secs(365 * 24 * 3600);
    let server_ca = CertificateAuthority::generate("Acme servers").expect("server CA");
    let (server_cert, server_key) = server_ca
        .issue_server_cert(&["127.0.0.1".into()], year, now)
        .expect("server certificate");
    let client_ca = CertificateAuthority::generate("Acme clients").expect("client CA");
    let client_key = AgentKey::generate().expect("client key");
    let client_cert = client_ca
        .sign_agent_csr(
            &client_key.csr_pem().expect("csr"),
            &DatacenterName::parse("datacenters/laptops").expect("a name"),
            year,
            now,
        )
        .expect("client certificate");
    let trust = write("acme-servers.pem", server_ca.cert_pem());
    let cert = write("client.pem", &client_cert.cert_pem);
    let key = write("client.key", &client_key.to_pem());
    let env = [
        (
            "OUTPOST_API__TLS__CERT_FILE",
            write(
                "api.pem",
                &format!("{}{}", server_cert.cert_pem, server_ca.cert_pem()),
            ),
        ),
        (
            "OUTPOST_API__TLS__KEY_FILE",
            write("api.key", &server_key.to_string()),
        ),
        (
            "OUTPOST_API__TLS__CLIENT_CA_FILE",
            write("clients.pem", client_ca.cert_pem()),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Management::start(&env).expect("management starts");
    assert!(server.process.ready.get("api_ca_file").is_none());
    let token = server.admin_token();
    let bearer = format!("authorization: Bearer {token}");
    let with_client_certificate = ["-cacert", &trust, "-cert", &cert, "-key", &key];

    let with_certificate = grpcurl_in(
        dir.path(),
        &[
            &with_client_certificate[..],
            &["-H", &bearer, &server.api, LIST],
        ]
        .concat(),
    );
    assert!(
        with_certificate.status.success(),
        "{}",
        both(&with_certificate)
    );
    // A client certificate opens the connection; the token still says who calls.
    let without_token = grpcurl_in(
        dir.path(),
        &[&with_client_certificate[..], &[&server.api, LIST]].concat(),
    );
    assert!(
        both(&without_token).contains("Unauthenticated"),
        "{}",
        both(&without_token)
    );
    let without_certificate = grpcurl_in(
        dir.path(),
        &["-cacert", &trust, "-H", &bearer, &server.api, LIST],
    );
    assert!(
        !without_certificate.status.success(),
        "{}",
        both(&without_certificate)
    );
    server.stop(&[]).expect("clean stop");
}
