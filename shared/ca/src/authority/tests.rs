use std::time::UNIX_EPOCH;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::string::Ia5String;
use rustls::pki_types::CertificateSigningRequestDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::extensions::ParsedExtension;

use super::*;
use crate::{AgentKey, agent_identity, fingerprint_of_pem, not_after_of, serial_of};

const HOUR: Duration = Duration::from_secs(3600);

fn dc(name: &str) -> DatacenterName {
    DatacenterName::parse(&format!("datacenters/{name}")).unwrap()
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[test]
fn generated_ca_is_a_leaf_only_ca_valid_for_ten_years() {
    let ca = CertificateAuthority::generate("outpost ca").unwrap();
    let der = der_of(ca.cert_pem());
    let cert = parse_cert(&der, "ca").unwrap();
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let years = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
        / (365 * 86_400);
    assert_eq!(years, 10);
    assert_eq!(ca.fingerprint().len(), 64);
    assert_eq!(fingerprint_of_pem(ca.cert_pem()).unwrap(), ca.fingerprint());
    assert!(!format!("{ca:?}").contains("PRIVATE"));
}

#[test]
fn csr_asking_for_another_identity_gets_the_ca_chosen_one() {
    let ca = CertificateAuthority::generate("outpost ca").unwrap();
    let key = KeyPair::generate().unwrap();
    let mut wants = CertificateParams::default();
    wants.distinguished_name = common_name("datacenters/other");
    wants.subject_alt_names = vec![
        SanType::URI(Ia5String::try_from("spiffe://outpost/dc/other").unwrap()),
        SanType::DnsName(Ia5String::try_from("gateway.example").unwrap()),
    ];
    wants.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    wants.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let csr = wants.serialize_request(&key).unwrap().pem().unwrap();

    let now = SystemTime::now();
    let issued = ca.sign_agent_csr(&csr, &dc("dc-1"), HOUR, now).unwrap();
    let der = der_of(&issued.cert_pem);
    assert_eq!(agent_identity(&der).unwrap(), dc("dc-1"));
    let cert = parse_cert(&der, "agent").unwrap();
    assert!(!cert.is_ca());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth && !eku.any);
    assert_eq!(
        cert.public_key().raw,
        key.subject_public_key_info().as_slice()
    );
    assert_eq!(serial_of(&der).unwrap(), issued.serial);
    assert_eq!(issued.serial.len(), 32);
    assert_eq!(not_after_of(&der).unwrap(), issued.not_after);
    let not_before = cert.validity().not_before.timestamp();
    let now_secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(not_before, i64::try_from(now_secs).unwrap() - 60);
    let aki = cert.extensions().iter().any(|e| {
        matches!(
            e.parsed_extension(),
            ParsedExtension::AuthorityKeyIdentifier(_)
        )
    });
    assert!(aki, "leaf carries an authority key identifier");
}

#[test]
fn each_issue_gets_a_fresh_serial() {
    let ca = CertificateAuthority::generate("outpost ca").unwrap();
    let csr = AgentKey::generate().unwrap().csr_pem().unwrap();
    let now = SystemTime::now();
    let a = ca.sign_agent_csr(&csr, &dc("a"), HOUR, now).unwrap();
    let b = ca.sign_agent_csr(&csr, &dc("a"), HOUR, now).unwrap();
    assert_ne!(a.serial, b.serial);
}

#[test]
fn tampered_or_malformed_csr_is_refused() {
    let ca = CertificateAuthority::generate("outpost ca").unwrap();
    let csr = AgentKey::generate().unwrap().csr_pem().unwrap();
    let mut der = CertificateSigningRequestDer::from_pem_slice(csr.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec();
    let at = der
        .windows(b"outpost-agent".len())
        .position(|w| w == b"outpost-agent")
        .unwrap();
    der[at] = b'O';
    let tampered = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        STANDARD.encode(&der)
    );
    let now = SystemTime::now();
    for bad in [tampered.as_str(), "", "garbage", &csr[..csr.len() / 2]] {
        match ca.sign_agent_csr(bad, &dc("dc-1"), HOUR, now) {
            Err(CaError::InvalidCsr(_)) => {}
            other => panic!("expected InvalidCsr, got {other:?}"),
        }
    }
}

#[test]
fn bad_datacenters_and_validities_are_refused() {
    let ca = CertificateAuthority::generate("outpost ca").unwrap();
    let csr = AgentKey::generate().unwrap().csr_pem().unwrap();
    let now = SystemTime::now();
    let hostile = DatacenterName {
        datacenter: "../x".into(),
    };
    assert!(matches!(
        ca.sign_agent_csr(&csr, &hostile, HOUR, now),
        Err(CaError::InvalidDatacenter { .. })
    ));
    for validity in [Duration::ZERO, CA_VALIDITY * 2, Duration::MAX] {
        assert!(matches!(
            ca.sign_agent_csr(&csr, &dc("a"), validity, now),
            Err(CaError::InvalidValidity { .. })
        ));
    }
}

#[test]
fn server_cert_has_dns_and_ip_names_and_no_agent_identity() {
    let ca = CertificateAuthority::generate("outpost ca").unwrap();
    let hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let (issued, key_pem) = ca
        .issue_server_cert(&hosts, HOUR, SystemTime::now())
        .unwrap();
    assert!(KeyPair::from_pem(&key_pem).is_ok());
    let der = der_of(&issued.cert_pem);
    let cert = parse_cert(&der, "server").unwrap();
    let names = format!(
        "{:?}",
        cert.subject_alternative_name().unwrap().unwrap().value
    );
    assert!(names.contains("DNSName(\"localhost\")"), "{names}");
    assert!(names.contains("IPAddress([127, 0, 0, 1])"), "{names}");
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    assert!(agent_identity(&der).is_err());

    for bad in [vec![], vec!["bad host".to_owned()], vec!["a..b".to_owned()]] {
        assert!(matches!(
            ca.issue_server_cert(&bad, HOUR, SystemTime::now()),
            Err(CaError::InvalidHostname { .. })
        ));
    }
}

#[test]
fn crl_lists_the_revoked_serial() {
    let ca = CertificateAuthority::generate("outpost ca").unwrap();
    let csr = AgentKey::generate().unwrap().csr_pem().unwrap();
    let now = SystemTime::now();
    let revoked = ca.sign_agent_csr(&csr, &dc("a"), HOUR, now).unwrap();
    let kept = ca.sign_agent_csr(&csr, &dc("a"), HOUR, now).unwrap();
    let crl_der = ca.crl(&[(revoked.serial.clone(), now)], 7, now).unwrap();

    let (rest, crl) = x509_parser::parse_x509_crl(&crl_der).unwrap();
    assert!(rest.is_empty());
    let listed: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect();
    assert_eq!(listed, vec![revoked.serial]);
    assert!(!listed.contains(&kept.serial));
    assert_eq!(
        crl.crl_number().map(|n| n.to_string()),
        Some("7".to_owned())
    );
    let this = crl.last_update().timestamp();
    let next = crl.next_update().unwrap().timestamp();
    assert_eq!(
        next - this,
        i64::try_from((CRL_VALIDITY + crate::CLOCK_SKEW).as_secs()).unwrap()
    );

    for bad in ["", "zz", &"ab".repeat(21)] {
        assert!(matches!(
            ca.crl(&[(bad.to_owned(), now)], 8, now),
            Err(CaError::InvalidSerial { .. })
        ));
    }
}
