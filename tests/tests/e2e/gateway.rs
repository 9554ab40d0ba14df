//! What the agent gateway refuses: every kind of caller that is not an enrolled agent with a
//! valid certificate from this installation's CA. Each gets an error and no desired state.

use std::{
    io::{Read, Write},
    time::{Duration, SystemTime},
};

use outpost_ca::{
    AgentKey, CertificateAuthority, KeyEncryptionKey, SealedCa, pinned_client_config,
};
use outpost_domain::DatacenterName;
use outpost_e2e::{Management, grpcurl_call};
use outpost_proto::agent::v1 as pb;

/// The installation's CA, opened the way a second management instance would: from the
/// shared database with the key file.
async fn installation_ca(server: &Management) -> CertificateAuthority {
    let url = format!(
        "sqlite://{}?mode=rwc",
        server.dir.join("outpost-data/outpost.db").display()
    );
    let store = outpost_store::Store::connect(&url, 2)
        .await
        .expect("open the management database");
    let sealed = store
        .authority_get()
        .await
        .expect("read")
        .expect("a CA exists");
    let kek = KeyEncryptionKey::from_text(
        std::fs::read_to_string(server.dir.join("outpost-data/ca.key"))
            .expect("key file")
            .trim(),
    )
    .expect("key");
    store.close().await;
    CertificateAuthority::unseal(
        &SealedCa {
            cert_pem: sealed.cert_pem,
            sealed_key: sealed.sealed_key,
        },
        &kek,
    )
    .expect("unseal")
}

/// Opens an attach stream with `identity` and returns the first message, or why it failed.
async fn attach(
    gateway: &str,
    ca: &CertificateAuthority,
    identity: Option<(&str, &str)>,
) -> Result<pb::AttachResponse, String> {
    let tls = pinned_client_config(&ca.fingerprint(), Some(ca.cert_pem()), identity)
        .map_err(|e| e.to_string())?;
    let channel = outpost_agent::link::channel::connect(gateway, tls)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let hello = pb::AttachRequest {
        traceparent: String::new(),
        kind: Some(pb::attach_request::Kind::Hello(pb::Hello {
            stored_revision: 0,
            agent_version: "test".into(),
            capacity: None,
            cluster: None,
        })),
    };
    let mut client = pb::agent_link_service_client::AgentLinkServiceClient::new(channel);
    let call = async {
        let mut stream = client
            .attach(tokio_stream::iter([hello]))
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        stream
            .message()
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .ok_or_else(|| "stream ended".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .map_err(|_| "timed out".to_owned())?
}

fn issue(
    ca: &CertificateAuthority,
    dc: &str,
    validity: Duration,
    issued_at: SystemTime,
) -> (String, String) {
    let key = AgentKey::generate().expect("key");
    let cert = ca
        .sign_agent_csr(
            &key.csr_pem().expect("csr"),
            &DatacenterName {
                datacenter: dc.into(),
            },
            validity,
            issued_at,
        )
        .expect("sign");
    (cert.cert_pem, key.to_pem().to_string())
}

#[test]
fn the_gateway_refuses_everything_but_enrolled_agents() {
    let server = Management::start(&[]).expect("start");
    let admin = server.admin_token();
    for dc in ["dc-a", "dc-b"] {
        let out = grpcurl_call(
            &server.api,
            &admin,
            "outpost.management.v1.DatacenterService/CreateDatacenter",
            &format!(r#"{{"datacenter_id":"{dc}","datacenter":{{}}}}"#),
        );
        assert!(out.status.success());
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ca = installation_ca(&server).await;
        let now = SystemTime::now();

        // A certificate from another CA: refused in the handshake.
        let other = CertificateAuthority::generate("someone else's CA").expect("ca");
        let (cert, key) = issue(&other, "dc-a", Duration::from_secs(3600), now);
        let err = attach(&server.gateway, &ca, Some((&cert, &key)))
            .await
            .expect_err("foreign CA");
        assert!(!err.contains("DesiredState"), "{err}");

        // An expired certificate from the right CA: refused in the handshake.
        let (cert, key) = issue(
            &ca,
            "dc-a",
            Duration::from_secs(120),
            now - Duration::from_secs(3600),
        );
        attach(&server.gateway, &ca, Some((&cert, &key)))
            .await
            .expect_err("expired certificate");

        // Server-only TLS (no client certificate): the handshake passes (enrollment needs
        // it), the link does not.
        let err = attach(&server.gateway, &ca, None)
            .await
            .expect_err("no client certificate");
        assert!(err.contains("Unauthenticated"), "{err}");

        // A valid certificate whose datacenter has no enrolled agent (minted outside
        // enrollment, or revoked): refused.
        let (cert, key) = issue(&ca, "dc-b", Duration::from_secs(3600), now);
        let err = attach(&server.gateway, &ca, Some((&cert, &key)))
            .await
            .expect_err("not enrolled");
        assert!(err.contains("PermissionDenied"), "{err}");
    });

    // Plain TCP speaking HTTP: no answer but a TLS alert or a closed connection.
    let mut tcp = std::net::TcpStream::connect(&server.gateway).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("desired"),
        "plain TCP got an answer"
    );

    // Plain-text gRPC to the gateway port fails too.
    let plain = grpcurl_call(
        &server.gateway,
        "",
        "outpost.agent.v1.AgentLinkService/RenewCertificate",
        "{}",
    );
    assert!(!plain.status.success());

    server.stop(&[]).expect("clean stop");
}

/// An agent that says hello and then nothing is closed after the silence limit, even while
/// other datacenters keep changing (their notices must not keep its link alive).
#[test]
fn a_silent_agent_is_dropped_even_while_other_datacenters_change() {
    let server =
        Management::start(&[("OUTPOST_GATEWAY__AGENT_SILENCE_LIMIT_SECS", "5")]).expect("start");
    let admin = server.admin_token();
    let api = |method: &str, body: String| {
        let out = grpcurl_call(
            &server.api,
            &admin,
            &format!("outpost.management.v1.{method}"),
            &body,
        );
        assert!(
            out.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    for dc in ["dc-a", "dc-b"] {
        api(
            "DatacenterService/CreateDatacenter",
            format!(r#"{{"datacenter_id":"{dc}","datacenter":{{}}}}"#),
        );
    }
    api(
        "TenantService/CreateTenant",
        r#"{"tenant_id":"t","tenant":{}}"#.into(),
    );
    api("ProjectService/CreateProject", r#"{"parent":"tenants/t","project_id":"p","project":{"default_datacenter":"datacenters/dc-b"}}"#.into());
    let join: serde_json::Value = serde_json::from_slice(&api(
        "DatacenterService/CreateJoinToken",
        r#"{"datacenter":"datacenters/dc-a"}"#.into(),
    ))
    .expect("json");
    // Enroll with the real agent, then speak for it by hand.
    let state = tempfile::tempdir().expect("dir");
    let enrolled = std::process::Command::new(outpost_e2e::bin("outpost-agent"))
        .arg("--state-dir")
        .arg(state.path())
        .args(["enroll", "--management", &server.gateway])
        .args([
            "--token",
            join["token"].as_str().expect("token"),
            "--ca-fingerprint",
            join["caFingerprint"].as_str().expect("fp"),
        ])
        .output()
        .expect("agent runs");
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    let read =
        |name: &str| std::fs::read_to_string(state.path().join(name)).expect("enrollment file");
    let (cert, key, ca_pem) = (read("agent.crt"), read("agent.key"), read("ca.crt"));
    let fingerprint = join["caFingerprint"].as_str().expect("fp").to_owned();

    let done = std::sync::atomic::AtomicBool::new(false);
    let closed_after = std::thread::scope(|scope| {
        // Another datacenter changes every second for as long as the silent link is watched.
        scope.spawn(|| {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) && n < 60 {
                n += 1;
                api(
                    "ServiceService/CreateService",
                    format!(
                        r#"{{"parent":"tenants/t/projects/p/environments/production","service_id":"s{n}","service":{{"image":"nginx","shape":"SHAPE_FLX","replicas":1}}}}"#
                    ),
                );
                outpost_e2e::wait_for("a second", Duration::from_secs(1), || false).ok();
            }
        });
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let closed = runtime.block_on(async {
            let tls = pinned_client_config(&fingerprint, Some(&ca_pem), Some((&cert, &key)))
                .expect("tls");
            let channel = outpost_agent::link::channel::connect(&server.gateway, tls)
                .await
                .expect("connect");
            let hello = pb::AttachRequest {
                traceparent: String::new(),
                kind: Some(pb::attach_request::Kind::Hello(pb::Hello {
                    stored_revision: 0,
                    agent_version: "silent".into(),
                    capacity: None,
                    cluster: None,
                })),
            };
            // The outbound stream stays open but carries nothing after hello.
            let (_keep_open, receiver) = tokio::sync::mpsc::channel::<pb::AttachRequest>(1);
            let outbound = futures::StreamExt::chain(
                tokio_stream::iter([hello]),
                tokio_stream::wrappers::ReceiverStream::new(receiver),
            );
            let mut client = pb::agent_link_service_client::AgentLinkServiceClient::new(channel);
            let mut stream = client.attach(outbound).await.expect("attach").into_inner();
            let started = std::time::Instant::now();
            let ended = async {
                while let Ok(Some(_)) = stream.message().await {}
                started.elapsed()
            };
            tokio::time::timeout(Duration::from_secs(30), ended).await
        });
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        closed
    });
    let closed_after =
        closed_after.expect("the silent link was never closed while other datacenters changed");
    assert!(
        closed_after < Duration::from_secs(15),
        "closed only after {closed_after:?}"
    );
    server.stop(&["agent went silent"]).expect("clean stop");
}
