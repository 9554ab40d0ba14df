//! The certificate authority: its own certificate and key, and everything it signs.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use outpost_domain::DatacenterName;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData, RevokedCertParams, SanType,
    SerialNumber,
};
use rustls::pki_types::{CertificateDer, DnsName};

use crate::error::{CaError, Result, printable};
use crate::identity::{agent_uri, fingerprint_bytes, parse_cert, single_cert_from_pem};
use crate::validity::{random_serial, system_time, window, x509_time};

/// How long a new CA certificate is valid.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long a CRL from [`CertificateAuthority::crl`] says it is current (its `next_update`).
/// Whoever publishes the CRL must issue a new one within this time.
pub const CRL_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// A certificate this CA has just issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate, PEM-encoded.
    pub cert_pem: String,
    /// Its serial number as lowercase hex; what [`crate::serial_of`] returns for it and
    /// what [`CertificateAuthority::crl`] takes to revoke it.
    pub serial: String,
    /// When it expires, to the second (equal to [`crate::not_after_of`] on it).
    pub not_after: SystemTime,
}

/// The internal CA that issues agent client certificates and the gateway's server
/// certificate, and signs the revocation list.
///
/// It holds its private key in memory only; to store it, use
/// [`CertificateAuthority::seal`]. `Debug` shows the fingerprint, never the key.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    not_after: SystemTime,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a new self-signed CA with an ECDSA P-256 key, common name `name`, valid from
    /// a minute ago for [`CA_VALIDITY`]. It may sign leaf certificates only (path length 0)
    /// and CRLs. Each call makes a different key; nothing is stored.
    pub fn generate(name: &str) -> Result<Self> {
        let key = KeyPair::generate().map_err(crypto("generating the CA key"))?;
        let window = window(SystemTime::now(), CA_VALIDITY)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(name);
        params.not_before = window.not_before;
        params.not_after = window.not_after;
        params.serial_number = Some(random_serial().0);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params
            .self_signed(&key)
            .map_err(crypto("self-signing the CA certificate"))?;
        Self::from_parts(cert.pem(), key)
    }

    /// Builds the CA from its certificate and key, checking they belong together. The one
    /// constructor behind [`Self::generate`] and [`Self::unseal`].
    pub(crate) fn from_parts(cert_pem: String, key: KeyPair) -> Result<Self> {
        const WHAT: &str = "CA certificate";
        let cert_der = single_cert_from_pem(&cert_pem, "CA certificate PEM")?;
        let parsed = parse_cert(&cert_der, WHAT)?;
        if parsed.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(CaError::KeyMismatch { what: WHAT });
        }
        let not_after = system_time(parsed.validity().not_after.timestamp())?;
        let issuer =
            Issuer::from_ca_cert_der(&cert_der, key).map_err(|source| CaError::InvalidKey {
                what: "CA key",
                source,
            })?;
        Ok(Self {
            cert_pem,
            cert_der,
            not_after,
            issuer,
        })
    }

    /// The CA certificate, PEM-encoded: the trust root for the gateway and for agents.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate's DER.
    pub(crate) fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA private key as PKCS#8 DER; only for sealing.
    pub(crate) fn key_der(&self) -> &[u8] {
        self.issuer.key().serialized_der()
    }

    /// The lowercase hex SHA-256 of the CA certificate's DER: the value an agent pins.
    pub fn fingerprint(&self) -> String {
        hex::encode(fingerprint_bytes(&self.cert_der))
    }

    /// Issues an agent client certificate for the public key in `csr_pem`.
    ///
    /// The CSR's self-signature is verified; everything else it asks for (subject, SANs,
    /// key usages, CA flag) is ignored. The identity comes from the CA, never from the
    /// agent: the certificate carries exactly one URI SAN `spiffe://outpost/dc/<dc>`, the
    /// client-auth EKU, no CA rights, a fresh random serial, and is valid from
    /// [`crate::CLOCK_SKEW`] before `now` until `now + validity`. Renewal is the same call
    /// with the DC taken from the agent's verified certificate ([`crate::agent_identity`]).
    ///
    /// Errors: [`CaError::InvalidCsr`] for a malformed or tampered CSR,
    /// [`CaError::InvalidDatacenter`], and [`CaError::InvalidValidity`] for a zero validity
    /// or one that would outlive the CA certificate.
    pub fn sign_agent_csr(
        &self,
        csr_pem: &str,
        dc: &DatacenterName,
        validity: Duration,
        now: SystemTime,
    ) -> Result<IssuedCert> {
        let uri = agent_uri(dc)?;
        let csr =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(CaError::InvalidCsr)?;
        let (mut params, serial, not_after) = self.leaf_params(validity, now)?;
        params.distinguished_name = common_name(&dc.to_string());
        params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(uri).map_err(|_| {
            CaError::InvalidDatacenter {
                datacenter: printable(&dc.datacenter),
            }
        })?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(crypto("signing the agent certificate"))?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            serial,
            not_after,
        })
    }

    /// Issues a server certificate for the gateway with a new ECDSA P-256 key, and returns
    /// it with the key as PKCS#8 PEM.
    ///
    /// Each hostname becomes an IP SAN if it parses as an IP address, otherwise a DNS SAN
    /// (e.g. `localhost`, `127.0.0.1`). The certificate has the server-auth EKU only, so it
    /// cannot be used as an agent identity. Errors: [`CaError::InvalidHostname`] (also for
    /// an empty list) and [`CaError::InvalidValidity`] as for [`Self::sign_agent_csr`].
    pub fn issue_server_cert(
        &self,
        hostnames: &[String],
        validity: Duration,
        now: SystemTime,
    ) -> Result<(IssuedCert, String)> {
        let first = hostnames.first().ok_or(CaError::InvalidHostname {
            hostname: String::new(),
        })?;
        let (mut params, serial, not_after) = self.leaf_params(validity, now)?;
        params.distinguished_name = common_name(first);
        params.subject_alt_names = hostnames
            .iter()
            .map(|h| server_san(h))
            .collect::<Result<_>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(crypto("generating the server key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(crypto("signing the server certificate"))?;
        let issued = IssuedCert {
            cert_pem: cert.pem(),
            serial,
            not_after,
        };
        Ok((issued, key.serialize_pem()))
    }

    /// Signs a certificate revocation list (DER) naming every serial in `revoked` (hex, as
    /// in [`IssuedCert::serial`]) with the time it was revoked.
    ///
    /// The CRL is current from [`crate::CLOCK_SKEW`] before `now` until `now +`
    /// [`CRL_VALIDITY`]; `crl_number` must grow with every CRL the caller issues (RFC 5280
    /// §5.2.3), which this function cannot check. The result is what
    /// [`crate::server_tls_config`] takes. Errors: [`CaError::InvalidSerial`],
    /// [`CaError::InvalidValidity`] for unencodable times.
    pub fn crl(
        &self,
        revoked: &[(String, SystemTime)],
        crl_number: u64,
        now: SystemTime,
    ) -> Result<Vec<u8>> {
        let revoked_certs = revoked
            .iter()
            .map(|(serial, at)| {
                Ok(RevokedCertParams {
                    serial_number: parse_serial(serial)?,
                    revocation_time: x509_time(*at)?,
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<_>>()?;
        let window = window(now, CRL_VALIDITY)?;
        let params = CertificateRevocationListParams {
            this_update: window.not_before,
            next_update: window.not_after,
            crl_number: SerialNumber::from(crl_number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(crypto("signing the revocation list"))?;
        Ok(crl.der().to_vec())
    }

    /// Parameters shared by every leaf: serial, window, not a CA, digital signature, and an
    /// authority key identifier. Refuses a leaf that would outlive this CA, since no verifier
    /// would accept it past that point anyway and the caller should know now.
    fn leaf_params(
        &self,
        validity: Duration,
        now: SystemTime,
    ) -> Result<(CertificateParams, String, SystemTime)> {
        let window = window(now, validity)?;
        if window.not_after_system > self.not_after {
            return Err(CaError::InvalidValidity {
                reason: "the certificate would outlive the CA certificate",
            });
        }
        let (serial_number, serial) = random_serial();
        let mut params = CertificateParams::default();
        params.serial_number = Some(serial_number);
        params.not_before = window.not_before;
        params.not_after = window.not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        Ok((params, serial, window.not_after_system))
    }
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn server_san(hostname: &str) -> Result<SanType> {
    if let Ok(ip) = hostname.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = || CaError::InvalidHostname {
        hostname: printable(hostname),
    };
    DnsName::try_from(hostname).map_err(|_| invalid())?;
    Ia5String::try_from(hostname)
        .map(SanType::DnsName)
        .map_err(|_| invalid())
}

/// Parses a hex serial as produced by this crate: 1–20 bytes (RFC 5280 §4.1.2.2).
fn parse_serial(serial: &str) -> Result<SerialNumber> {
    match hex::decode(serial) {
        Ok(bytes) if (1..=20).contains(&bytes.len()) => Ok(SerialNumber::from(bytes)),
        _ => Err(CaError::InvalidSerial {
            serial: printable(serial),
        }),
    }
}

fn crypto(operation: &'static str) -> impl FnOnce(rcgen::Error) -> CaError {
    move |source| CaError::Crypto { operation, source }
}

#[cfg(test)]
mod tests;
