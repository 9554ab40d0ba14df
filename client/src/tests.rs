use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::*;

fn plaintext(name: &str, address: &str) -> Endpoint {
    Endpoint {
        name: name.into(),
        address: address.into(),
        tls: Tls::Plaintext,
        token: Some("opt_secret".into()),
    }
}

/// A real gRPC server on loopback answering health checks for "" only.
async fn healthy_server(listener: TcpListener) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
}

async fn check(connection: Connection, service: &'static str) -> Result<i32, Status> {
    let request = connection.request(HealthCheckRequest {
        service: service.into(),
    });
    Ok(HealthClient::new(connection.channel())
        .check(request)
        .await?
        .into_inner()
        .status)
}

#[test]
fn endpoints_outside_a_runtime_are_refused_not_a_panic() {
    let err = Endpoints::new(vec![plaintext("fra1", "fra1:7070")], Duration::from_secs(1));
    assert!(matches!(err, Err(ClientError::NoRuntime)));
}

#[tokio::test]
async fn settings_are_checked_per_endpoint() {
    let deadline = Duration::from_secs(1);
    assert!(matches!(
        Endpoints::new(vec![], deadline),
        Err(ClientError::NoEndpoints)
    ));
    let twice = vec![plaintext("fra1", "a:1"), plaintext("fra1", "b:1")];
    assert!(matches!(
        Endpoints::new(twice, deadline),
        Err(ClientError::DuplicateName(n)) if n == "fra1"
    ));
    for address in [
        "fra1",
        "fra1:",
        ":7070",
        "fra1:port",
        "http://fra1:7070/x y",
    ] {
        let err = Endpoints::new(vec![plaintext("fra1", address)], deadline)
            .expect_err(address)
            .to_string();
        assert!(err.contains("fra1") && err.contains("host:port"), "{err}");
    }
    let mut bad_token = plaintext("ams1", "ams1:7070");
    bad_token.token = Some("line\nbreak".into());
    let err = Endpoints::new(vec![bad_token.clone()], deadline).expect_err("a bad token");
    assert!(matches!(err, ClientError::BadToken { ref endpoint } if endpoint == "ams1"));
    assert!(
        !format!("{bad_token:?}").contains("line"),
        "the token is never shown"
    );
}

#[tokio::test]
async fn fan_out_answers_for_every_endpoint_and_never_fails_as_a_whole() {
    let answering = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let answering_address = answering.local_addr().expect("addr").to_string();
    healthy_server(answering).await;
    // Accepts connections and never says a word: a datacenter behind a stalled link.
    let stalled = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let stalled_address = stalled.local_addr().expect("addr").to_string();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = stalled.accept().await {
            open.push(socket);
        }
    });
    // Nothing listens here: a datacenter whose management instance is down.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed_address = closed.local_addr().expect("addr").to_string();
    drop(closed);

    let deadline = Duration::from_millis(500);
    let endpoints = Endpoints::new(
        vec![
            plaintext("fra1", &answering_address),
            plaintext("ams1", &stalled_address),
            plaintext("lis1", &closed_address),
        ],
        deadline,
    )
    .expect("endpoints");
    let started = Instant::now();
    let all = endpoints.fan_out(|c| check(c, "")).await;
    assert!(
        started.elapsed() < deadline * 4,
        "each endpoint waited at most its deadline: {:?}",
        started.elapsed()
    );
    let names: Vec<&str> = all.results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["fra1", "ams1", "lis1"], "in the order given");
    assert_eq!(all.answered().collect::<Vec<_>>(), [("fra1", &1)]);
    let unreachable: Vec<&str> = all.unreachable().map(|(n, _)| n).collect();
    assert_eq!(unreachable, ["ams1", "lis1"], "{all:?}");
    assert!(all.unreachable().all(|(_, why)| !why.is_empty()));

    // An endpoint's own refusal is its answer, not unreachability.
    let refused = endpoints.fan_out(|c| check(c, "no-such-service")).await;
    let codes: Vec<(&str, Code)> = refused.refused().map(|(n, s)| (n, s.code())).collect();
    assert_eq!(codes, [("fra1", Code::NotFound)]);

    // The one that was down answers once it is up again, with nothing rebuilt.
    let back = TcpListener::bind(&closed_address).await.expect("rebind");
    healthy_server(back).await;
    let mut answered = Vec::new();
    for _ in 0..50 {
        let again = endpoints.fan_out(|c| check(c, "")).await;
        answered = again.answered().map(|(n, _)| n.to_owned()).collect();
        if answered.contains(&"lis1".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered, ["fra1", "lis1"]);
}
