//! Reading certificates: the agent identity, serials, expiry and fingerprints.
//!
//! The agent identity is a SPIFFE-style URI SAN, `spiffe://outpost/dc/<datacenter>`. It is
//! written only by [`crate::CertificateAuthority::sign_agent_csr`] and read only by
//! [`agent_identity`], so both directions live in this module.

use std::time::SystemTime;

use outpost_domain::DatacenterName;
use outpost_domain::names::is_dns_label;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::error::{CaError, Result, printable};
use crate::validity::system_time;

/// Prefix of every agent identity URI; the datacenter segment follows it.
const AGENT_URI_PREFIX: &str = "spiffe://outpost/dc/";

/// The identity URI for an agent of `dc`, after checking the segment is a DNS label
/// (the public field of [`DatacenterName`] can hold anything).
pub(crate) fn agent_uri(dc: &DatacenterName) -> Result<String> {
    if !is_dns_label(&dc.datacenter) {
        return Err(CaError::InvalidDatacenter {
            datacenter: printable(&dc.datacenter),
        });
    }
    Ok(format!("{AGENT_URI_PREFIX}{}", dc.datacenter))
}

/// The datacenter named by the agent identity in a certificate.
///
/// Call this only on a certificate that TLS has already verified against the CA: it reads
/// the identity, it does not check the signature. The certificate must carry exactly one
/// subject alternative name, a URI of exactly the form `spiffe://outpost/dc/<label>` with a
/// DNS label; anything else (no SAN, a second name, another trust domain, extra path
/// segments, `..`, percent-encoding, upper case, query or fragment) is
/// [`CaError::InvalidIdentity`], and unparsable DER is [`CaError::InvalidCertificate`].
pub fn agent_identity(cert_der: &[u8]) -> Result<DatacenterName> {
    let cert = parse_cert(cert_der, "peer certificate")?;
    let invalid = |reason| CaError::InvalidIdentity { reason };
    let san = cert
        .subject_alternative_name()
        .map_err(|_| invalid("subject alternative names are malformed or repeated"))?
        .ok_or_else(|| invalid("no subject alternative name"))?;
    let [name] = san.value.general_names.as_slice() else {
        return Err(invalid("expected exactly one subject alternative name"));
    };
    let GeneralName::URI(uri) = name else {
        return Err(invalid("the subject alternative name is not a URI"));
    };
    let datacenter = uri
        .strip_prefix(AGENT_URI_PREFIX)
        .ok_or_else(|| invalid("the URI is not in the spiffe://outpost/dc/ namespace"))?;
    if !is_dns_label(datacenter) {
        return Err(invalid("the datacenter segment is not a DNS label"));
    }
    DatacenterName::parse(&format!("datacenters/{datacenter}"))
        .map_err(|_| invalid("the datacenter segment is not a DNS label"))
}

/// The serial number of a certificate as lowercase hex of its DER integer bytes: for
/// certificates from this CA, the same string as [`crate::IssuedCert::serial`] and the form
/// [`crate::CertificateAuthority::crl`] expects.
pub fn serial_of(cert_der: &[u8]) -> Result<String> {
    Ok(hex::encode(
        parse_cert(cert_der, "certificate")?.raw_serial(),
    ))
}

/// When a certificate stops being valid, to the second.
pub fn not_after_of(cert_der: &[u8]) -> Result<SystemTime> {
    validity_of(cert_der).map(|(_, not_after)| not_after)
}

/// When a certificate starts and stops being valid, to the second.
pub fn validity_of(cert_der: &[u8]) -> Result<(SystemTime, SystemTime)> {
    let cert = parse_cert(cert_der, "certificate")?;
    Ok((
        system_time(cert.validity().not_before.timestamp())?,
        system_time(cert.validity().not_after.timestamp())?,
    ))
}

/// The lowercase hex SHA-256 of the certificate in `cert_pem`, the value agents pin.
///
/// The PEM must hold exactly one certificate, so a bundle cannot be pinned by accident.
pub fn fingerprint_of_pem(cert_pem: &str) -> Result<String> {
    let cert = single_cert_from_pem(cert_pem, "certificate PEM")?;
    Ok(hex::encode(fingerprint_bytes(&cert)))
}

/// SHA-256 over a certificate's DER.
pub(crate) fn fingerprint_bytes(cert_der: &[u8]) -> [u8; 32] {
    Sha256::digest(cert_der).into()
}

/// Decodes a pinned fingerprint: 64 hex digits, either case.
pub(crate) fn parse_fingerprint(fingerprint: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(fingerprint.trim(), &mut out).map_err(|_| CaError::InvalidFingerprint)?;
    Ok(out)
}

/// All certificates in a PEM text, in order; an empty or malformed PEM is an error.
pub(crate) fn certs_from_pem(
    pem: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CaError::Malformed { what })?;
    if certs.is_empty() {
        return Err(CaError::Malformed { what });
    }
    Ok(certs)
}

/// The only certificate in a PEM text; none, several or a malformed PEM is an error.
pub(crate) fn single_cert_from_pem(
    pem: &str,
    what: &'static str,
) -> Result<CertificateDer<'static>> {
    let [cert] =
        <[_; 1]>::try_from(certs_from_pem(pem, what)?).map_err(|_| CaError::Malformed { what })?;
    Ok(cert)
}

/// Parses one DER certificate, refusing trailing bytes.
pub(crate) fn parse_cert<'a>(der: &'a [u8], what: &'static str) -> Result<X509Certificate<'a>> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(CaError::Malformed { what }),
        Err(x509_parser::nom::Err::Error(source) | x509_parser::nom::Err::Failure(source)) => {
            Err(CaError::InvalidCertificate { what, source })
        }
        Err(x509_parser::nom::Err::Incomplete(_)) => Err(CaError::Malformed { what }),
    }
}

#[cfg(test)]
mod tests;
