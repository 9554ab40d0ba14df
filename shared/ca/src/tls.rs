//! rustls configurations for both ends of the agent link, and for the public API's server.
//!
//! Both use the ring provider explicitly and never install a process-wide default, so a
//! binary that also links another provider cannot panic on the first handshake. Both
//! advertise ALPN `h2`: tonic clients refuse a connection that did not negotiate HTTP/2.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::error::{CaError, Result};
use crate::identity::{certs_from_pem, fingerprint_bytes, parse_fingerprint, single_cert_from_pem};

/// The ALPN protocol both ends offer.
const ALPN_H2: &[u8] = b"h2";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The gateway's TLS server configuration.
///
/// The server presents `server_cert_pem` (one certificate or a chain) followed by the CA
/// certificate, so an agent on first contact can check the CA against its pin. Client
/// certificates are verified against the CA alone, including the client-auth EKU and the
/// validity period, and, when `crl_der` is given, against that CRL; a CRL past its
/// `next_update` is still applied rather than failing every handshake, so publishing a
/// fresh one is the caller's job (see [`crate::CRL_VALIDITY`]).
///
/// With `require_client_cert` false a client may connect without a certificate (for
/// enrollment on the same port); a client that does present one must still present a
/// valid one, and the application layer must refuse link calls from unauthenticated
/// peers. Errors: [`CaError::Malformed`] for bad PEM, [`CaError::Verifier`] for an
/// unparsable CRL, [`CaError::Tls`] if the key does not fit the certificate.
pub fn server_tls_config(
    ca_cert_pem: &str,
    server_cert_pem: &str,
    server_key_pem: &str,
    crl_der: Option<&[u8]>,
    require_client_cert: bool,
) -> Result<Arc<ServerConfig>> {
    let provider = provider();
    let ca = single_cert_from_pem(ca_cert_pem, "CA certificate PEM")?;
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(roots_of(ca.clone())?, provider.clone());
    if let Some(crl) = crl_der {
        verifier = verifier.with_crls([CertificateRevocationListDer::from(crl.to_vec())]);
    }
    if !require_client_cert {
        verifier = verifier.allow_unauthenticated();
    }
    let verifier = verifier.build().map_err(CaError::Verifier)?;

    let mut chain = certs_from_pem(server_cert_pem, "server certificate PEM")?;
    if chain.last() != Some(&ca) {
        chain.push(ca);
    }
    server_config(provider, verifier, chain, server_key_pem)
}

/// The public API's TLS server configuration: `cert_pem` (a chain, leaf first) and its key.
/// With `client_ca_pem`, every client must present a certificate that CA signed (with the
/// client-auth EKU, within its validity); without it, none is asked for. Errors as
/// [`server_tls_config`].
pub fn api_tls_config(
    cert_pem: &str,
    key_pem: &str,
    client_ca_pem: Option<&str>,
) -> Result<Arc<ServerConfig>> {
    let provider = provider();
    let verifier = match client_ca_pem {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for ca in certs_from_pem(pem, "client CA PEM")? {
                roots.add(ca).map_err(CaError::Tls)?;
            }
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(CaError::Verifier)?
        }
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let chain = certs_from_pem(cert_pem, "server certificate PEM")?;
    server_config(provider, verifier, chain, key_pem)
}

fn server_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    chain: Vec<CertificateDer<'static>>,
    key_pem: &str,
) -> Result<Arc<ServerConfig>> {
    let key = private_key(key_pem, "server key PEM")?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(CaError::Tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(CaError::Tls)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The agent's TLS client configuration, trusting only the CA with the pinned SHA-256
/// fingerprint (as from [`crate::CertificateAuthority::fingerprint`], either case).
///
/// - With `known_ca_cert_pem` (learned at enrollment), that certificate must match the pin
///   ([`CaError::PinMismatch`] otherwise) and is the only root for standard WebPKI
///   verification of the server certificate: signature, validity, server-auth EKU and
///   server name.
/// - Without it (first contact), the server must send its CA certificate last in its chain
///   ([`server_tls_config`] does); that certificate's fingerprint must equal the pin, and
///   the server certificate is then verified against it exactly as above. Pinning the hash
///   of the whole DER makes this as strong as knowing the CA in advance.
///
/// A server that fails either check is refused with `UnknownIssuer` (or the WebPKI error).
/// `client_identity` is the agent's `(cert_pem, key_pem)`; without it the client presents
/// no certificate (enrollment). Errors: [`CaError::InvalidFingerprint`],
/// [`CaError::Malformed`], [`CaError::Tls`] if the key does not fit the certificate.
pub fn pinned_client_config(
    expected_ca_fingerprint: &str,
    known_ca_cert_pem: Option<&str>,
    client_identity: Option<(&str, &str)>,
) -> Result<Arc<ClientConfig>> {
    let pin = parse_fingerprint(expected_ca_fingerprint)?;
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match known_ca_cert_pem {
        Some(pem) => {
            let ca = single_cert_from_pem(pem, "CA certificate PEM")?;
            if fingerprint_bytes(&ca) != pin {
                return Err(CaError::PinMismatch);
            }
            WebPkiServerVerifier::builder_with_provider(roots_of(ca)?, provider.clone())
                .build()
                .map_err(CaError::Verifier)?
        }
        None => Arc::new(FirstContactVerifier {
            pin,
            provider: provider.clone(),
        }),
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(CaError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_identity {
        Some((cert_pem, key_pem)) => builder
            .with_client_auth_cert(
                certs_from_pem(cert_pem, "client certificate PEM")?,
                private_key(key_pem, "client key PEM")?,
            )
            .map_err(CaError::Tls)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

fn roots_of(ca: CertificateDer<'static>) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca).map_err(CaError::Tls)?;
    Ok(Arc::new(roots))
}

fn private_key(pem: &str, what: &'static str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| CaError::Malformed { what })
}

/// Verifies a server before its CA certificate is known: the last certificate of the
/// presented chain must hash to the pin, and becomes the only root for WebPKI verification
/// of the rest. The presented CA is never trusted for anything but that one handshake.
#[derive(Debug)]
struct FirstContactVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for FirstContactVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let unknown_issuer = || rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let (ca, rest) = intermediates.split_last().ok_or_else(unknown_issuer)?;
        if fingerprint_bytes(ca) != self.pin {
            return Err(unknown_issuer());
        }
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::Other(OtherError(Arc::new(e))))?
            .verify_server_cert(end_entity, rest, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests;
