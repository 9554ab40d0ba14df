use rcgen::string::Ia5String;
use rcgen::{CertificateParams, KeyPair, SanType};

use super::*;

fn cert_with_sans(sans: Vec<SanType>) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn uri(s: &str) -> SanType {
    SanType::URI(Ia5String::try_from(s).unwrap())
}

#[test]
fn well_formed_identity_names_the_datacenter() {
    let der = cert_with_sans(vec![uri("spiffe://outpost/dc/dc-1")]);
    assert_eq!(
        agent_identity(&der).unwrap(),
        DatacenterName::parse("datacenters/dc-1").unwrap()
    );
}

#[test]
fn hostile_subject_alternative_names_are_refused() {
    let cases: Vec<(&str, Vec<SanType>)> = vec![
        ("no SAN", vec![]),
        (
            "two URIs",
            vec![uri("spiffe://outpost/dc/a"), uri("spiffe://outpost/dc/b")],
        ),
        (
            "URI plus DNS",
            vec![
                uri("spiffe://outpost/dc/a"),
                SanType::DnsName(Ia5String::try_from("a.example").unwrap()),
            ],
        ),
        (
            "identity as a DNS name",
            vec![SanType::DnsName(
                Ia5String::try_from("spiffe://outpost/dc/a").unwrap(),
            )],
        ),
        ("other trust domain", vec![uri("spiffe://other/dc/a")]),
        (
            "trust domain suffix",
            vec![uri("spiffe://outpost.evil/dc/a")],
        ),
        ("other scheme", vec![uri("https://outpost/dc/a")]),
        ("dot-dot", vec![uri("spiffe://outpost/dc/../x")]),
        ("dot-dot after", vec![uri("spiffe://outpost/dc/a/../b")]),
        ("extra segment", vec![uri("spiffe://outpost/dc/a/b")]),
        ("trailing slash", vec![uri("spiffe://outpost/dc/a/")]),
        ("empty dc", vec![uri("spiffe://outpost/dc/")]),
        ("upper case", vec![uri("spiffe://outpost/dc/DC")]),
        ("upper-case prefix", vec![uri("SPIFFE://outpost/dc/a")]),
        ("percent", vec![uri("spiffe://outpost/dc/a%2fb")]),
        ("query", vec![uri("spiffe://outpost/dc/a?x=1")]),
        ("fragment", vec![uri("spiffe://outpost/dc/a#f")]),
        ("dot", vec![uri("spiffe://outpost/dc/a.b")]),
        ("userinfo", vec![uri("spiffe://x@outpost/dc/a")]),
        ("port", vec![uri("spiffe://outpost:443/dc/a")]),
        ("other path", vec![uri("spiffe://outpost/dcs/a")]),
        (
            "too long",
            vec![uri(&format!("spiffe://outpost/dc/a{}", "b".repeat(63)))],
        ),
        ("ip", vec![SanType::IpAddress([127, 0, 0, 1].into())]),
    ];
    for (case, sans) in cases {
        let der = cert_with_sans(sans);
        match agent_identity(&der) {
            Err(CaError::InvalidIdentity { .. }) => {}
            other => panic!("{case}: expected InvalidIdentity, got {other:?}"),
        }
    }
}

#[test]
fn malformed_der_is_an_error_not_a_panic() {
    let good = cert_with_sans(vec![uri("spiffe://outpost/dc/a")]);
    let mut trailing = good.clone();
    trailing.push(0);
    let inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x30],
        vec![0x30, 0x82, 0xff, 0xff],
        b"not a certificate".to_vec(),
        good[..good.len() / 2].to_vec(),
        trailing,
    ];
    for der in inputs {
        assert!(agent_identity(&der).is_err());
        assert!(serial_of(&der).is_err());
        assert!(not_after_of(&der).is_err());
    }
}

#[test]
fn fingerprint_needs_exactly_one_certificate() {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::default().self_signed(&key).unwrap();
    let one = cert.pem();
    let expected = hex::encode(Sha256::digest(cert.der()));
    assert_eq!(fingerprint_of_pem(&one).unwrap(), expected);
    let two = format!("{one}{one}");
    for bad in ["", "garbage", two.as_str()] {
        assert!(matches!(
            fingerprint_of_pem(bad),
            Err(CaError::Malformed { .. })
        ));
    }
    assert!(parse_fingerprint(&expected.to_uppercase()).is_ok());
    assert!(parse_fingerprint(&expected[..62]).is_err());
    assert!(parse_fingerprint("zz").is_err());
}
