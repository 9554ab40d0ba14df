//! Real TLS handshakes over loopback between [`pinned_client_config`] and
//! [`server_tls_config`]. The server's verdict is authoritative for client certificates:
//! under TLS 1.3 the client finishes its half before the server has checked its cert.

use std::time::{Duration, SystemTime};

use outpost_domain::DatacenterName;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;
use crate::{AgentKey, CertificateAuthority, IssuedCert, agent_identity};

const CA_NAME: &str = "outpost test ca";
const HOUR: Duration = Duration::from_secs(3600);
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// What each side of one handshake concluded.
struct Outcome {
    /// The client's result.
    client: Result<(), String>,
    /// The server's result: the client's leaf certificate, if it sent one.
    server: Result<Option<Vec<u8>>, String>,
    /// The ALPN protocol the server negotiated.
    alpn: Option<Vec<u8>>,
}

async fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_side = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match TlsAcceptor::from(server).accept(tcp).await {
            Ok(tls) => {
                let conn = tls.get_ref().1;
                let leaf = conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec());
                (Ok(leaf), conn.alpn_protocol().map(<[u8]>::to_vec))
            }
            Err(e) => (Err(e.to_string()), None),
        }
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let client_result = timeout(
        HANDSHAKE_DEADLINE,
        TlsConnector::from(client).connect(name, tcp),
    )
    .await
    .expect("client handshake finished in time");
    // Keep the client stream open until the server has decided.
    let (server_result, alpn) = timeout(HANDSHAKE_DEADLINE, server_side)
        .await
        .expect("server handshake finished in time")
        .unwrap();
    Outcome {
        client: client_result.map(drop).map_err(|e| e.to_string()),
        server: server_result,
        alpn,
    }
}

/// A CA, a gateway server certificate for `localhost`, and helpers to make agents.
struct Pki {
    ca: CertificateAuthority,
    server_cert: IssuedCert,
    server_key: String,
}

impl Pki {
    fn new() -> Self {
        let ca = CertificateAuthority::generate(CA_NAME).unwrap();
        let hosts = ["localhost".to_owned(), "127.0.0.1".to_owned()];
        let (server_cert, server_key) = ca
            .issue_server_cert(&hosts, HOUR, SystemTime::now())
            .unwrap();
        Self {
            ca,
            server_cert,
            server_key,
        }
    }

    fn server(&self, crl: Option<&[u8]>, require_client_cert: bool) -> Arc<ServerConfig> {
        server_tls_config(
            self.ca.cert_pem(),
            &self.server_cert.cert_pem,
            &self.server_key,
            crl,
            require_client_cert,
        )
        .unwrap()
    }

    /// An agent client config trusting this CA (known) with an identity from `issuer`.
    fn agent(
        &self,
        issuer: &CertificateAuthority,
        now: SystemTime,
        validity: Duration,
    ) -> (Arc<ClientConfig>, IssuedCert) {
        let key = AgentKey::generate().unwrap();
        let csr = key.csr_pem().unwrap();
        let issued = issuer.sign_agent_csr(&csr, &dc1(), validity, now).unwrap();
        let config = pinned_client_config(
            &self.ca.fingerprint(),
            Some(self.ca.cert_pem()),
            Some((&issued.cert_pem, &key.to_pem())),
        )
        .unwrap();
        (config, issued)
    }
}

fn dc1() -> DatacenterName {
    DatacenterName::parse("datacenters/dc-1").unwrap()
}

#[tokio::test]
async fn valid_agent_cert_is_accepted_and_its_identity_read_back() {
    let pki = Pki::new();
    let (client, _) = pki.agent(&pki.ca, SystemTime::now(), HOUR);
    let out = handshake(pki.server(None, true), client).await;
    assert_eq!(out.client, Ok(()));
    let leaf = out.server.unwrap().expect("client presented a certificate");
    assert_eq!(agent_identity(&leaf).unwrap(), dc1());
    assert_eq!(out.alpn.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn cert_from_another_ca_is_refused() {
    let pki = Pki::new();
    let other = CertificateAuthority::generate("someone else").unwrap();
    let (client, _) = pki.agent(&other, SystemTime::now(), HOUR);
    let out = handshake(pki.server(None, true), client).await;
    let err = out.server.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn expired_cert_is_refused() {
    let pki = Pki::new();
    let two_hours_ago = SystemTime::now() - 2 * HOUR;
    let (client, _) = pki.agent(&pki.ca, two_hours_ago, HOUR);
    let out = handshake(pki.server(None, true), client).await;
    let err = out.server.unwrap_err();
    assert!(err.contains("certificate expired"), "{err}");
}

#[tokio::test]
async fn revoked_serial_is_refused_once_the_crl_lists_it() {
    let pki = Pki::new();
    let now = SystemTime::now();
    let (revoked_client, revoked) = pki.agent(&pki.ca, now, HOUR);
    let (kept_client, _) = pki.agent(&pki.ca, now, HOUR);

    let empty_crl = pki.ca.crl(&[], 1, now).unwrap();
    let out = handshake(pki.server(Some(&empty_crl), true), revoked_client.clone()).await;
    assert!(out.server.is_ok(), "accepted before revocation");

    let crl = pki.ca.crl(&[(revoked.serial, now)], 2, now).unwrap();
    let out = handshake(pki.server(Some(&crl), true), revoked_client).await;
    let err = out.server.unwrap_err();
    assert!(err.contains("Revoked"), "{err}");

    let out = handshake(pki.server(Some(&crl), true), kept_client).await;
    assert!(out.server.unwrap().is_some(), "other certs still accepted");
}

#[tokio::test]
async fn client_without_cert_is_accepted_only_when_not_required() {
    let pki = Pki::new();
    // First contact: the agent knows only the pin and has no certificate yet.
    let enrolling = pinned_client_config(&pki.ca.fingerprint(), None, None).unwrap();

    let out = handshake(pki.server(None, false), enrolling.clone()).await;
    assert_eq!(out.client, Ok(()));
    assert_eq!(out.server, Ok(None));
    assert_eq!(out.alpn.as_deref(), Some(&b"h2"[..]));

    let out = handshake(pki.server(None, true), enrolling).await;
    let err = out.server.unwrap_err();
    assert!(err.contains("no certificates"), "{err}");
}

#[tokio::test]
async fn optional_client_auth_still_refuses_a_bad_cert() {
    let pki = Pki::new();
    let other = CertificateAuthority::generate("someone else").unwrap();
    let (client, _) = pki.agent(&other, SystemTime::now(), HOUR);
    let out = handshake(pki.server(None, false), client).await;
    assert!(out.server.unwrap_err().contains("UnknownIssuer"));
}

#[tokio::test]
async fn wrong_pin_is_refused_by_the_client() {
    let pki = Pki::new();
    let other = CertificateAuthority::generate("someone else").unwrap();
    let client = pinned_client_config(&other.fingerprint(), None, None).unwrap();
    let out = handshake(pki.server(None, false), client).await;
    let err = out.client.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(out.server.is_err());
}

#[tokio::test]
async fn pinned_ca_cert_presented_without_its_key_is_refused() {
    // An impostor sends a chain that ends in the real (pinned) CA certificate but whose
    // leaf was signed by its own CA with the same name: the pin and the issuer name match,
    // only the signature does not.
    let pki = Pki::new();
    let impostor = CertificateAuthority::generate(CA_NAME).unwrap();
    let hosts = ["localhost".to_owned()];
    let (leaf, key) = impostor
        .issue_server_cert(&hosts, HOUR, SystemTime::now())
        .unwrap();
    let chain = format!("{}{}", leaf.cert_pem, pki.ca.cert_pem());
    let server = server_tls_config(pki.ca.cert_pem(), &chain, &key, None, false).unwrap();
    let client = pinned_client_config(&pki.ca.fingerprint(), None, None).unwrap();
    let out = handshake(server, client).await;
    let err = out.client.unwrap_err();
    assert!(
        err.contains("BadSignature") || err.contains("UnknownIssuer"),
        "{err}"
    );
}

#[tokio::test]
async fn server_name_is_checked_on_first_contact() {
    let pki = Pki::new();
    let hosts = ["gateway.example".to_owned()];
    let (cert, key) = pki
        .ca
        .issue_server_cert(&hosts, HOUR, SystemTime::now())
        .unwrap();
    let server = server_tls_config(pki.ca.cert_pem(), &cert.cert_pem, &key, None, false).unwrap();
    let client = pinned_client_config(&pki.ca.fingerprint(), None, None).unwrap();
    let err = handshake(server, client).await.client.unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");
}

#[test]
fn known_ca_must_match_the_pin() {
    let pki = Pki::new();
    let other = CertificateAuthority::generate("someone else").unwrap();
    assert!(matches!(
        pinned_client_config(&other.fingerprint(), Some(pki.ca.cert_pem()), None),
        Err(CaError::PinMismatch)
    ));
    assert!(matches!(
        pinned_client_config("not hex", None, None),
        Err(CaError::InvalidFingerprint)
    ));
}

#[test]
fn malformed_inputs_are_errors() {
    let pki = Pki::new();
    let ca = pki.ca.cert_pem();
    let cert = pki.server_cert.cert_pem.as_str();
    let key = pki.server_key.as_str();
    assert!(matches!(
        server_tls_config("garbage", cert, key, None, true),
        Err(CaError::Malformed { .. })
    ));
    assert!(matches!(
        server_tls_config(ca, cert, "garbage", None, true),
        Err(CaError::Malformed { .. })
    ));
    assert!(matches!(
        server_tls_config(ca, cert, key, Some(b"not a crl"), true),
        Err(CaError::Verifier(_))
    ));
    let other_key = AgentKey::generate().unwrap().to_pem();
    assert!(matches!(
        server_tls_config(ca, cert, &other_key, None, true),
        Err(CaError::Tls(_))
    ));
}
