//! The one error type of this crate.
//!
//! `Display` describes what failed at this layer only; the underlying library error, when
//! there is one, is the `source()` and is printed by a chain printer, never repeated here.

/// Why a certificate-authority operation failed.
///
/// Every variant caused by caller input (a CSR, a PEM, a fingerprint, a token file) is a
/// client mistake, never a bug here; [`CaError::Crypto`] and [`CaError::Tls`] are the only
/// variants that point at this crate or its libraries.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The certificate signing request could not be parsed or its self-signature is wrong.
    #[error("certificate signing request is malformed or its signature is invalid")]
    InvalidCsr(#[source] rcgen::Error),
    /// A PEM or DER input did not hold what was expected.
    #[error("{what} is malformed")]
    Malformed {
        /// What the input was meant to be, e.g. "CA certificate PEM".
        what: &'static str,
    },
    /// A certificate parsed as DER but could not be understood as X.509.
    #[error("{what} is not a valid X.509 certificate")]
    InvalidCertificate {
        /// Which certificate.
        what: &'static str,
        /// The parser's complaint.
        #[source]
        source: x509_parser::error::X509Error,
    },
    /// A private key could not be loaded.
    #[error("{what} is not a usable PKCS#8 private key")]
    InvalidKey {
        /// Which key.
        what: &'static str,
        /// The loader's complaint.
        #[source]
        source: rcgen::Error,
    },
    /// A private key does not belong to the certificate it was paired with.
    #[error("private key does not match the {what}")]
    KeyMismatch {
        /// Which certificate the key was paired with.
        what: &'static str,
    },
    /// The sealed CA key could not be opened. Deliberately one error for both causes: an
    /// AEAD cannot tell them apart, and guessing would mislead the operator.
    #[error(
        "sealed CA key could not be opened: wrong key-encryption key, or the key was sealed for another certificate"
    )]
    Unseal,
    /// A key-encryption key in text form is not 32 bytes of base64.
    #[error("key-encryption key must be 32 bytes encoded as base64")]
    InvalidKeyEncryptionKey,
    /// A validity period or point in time cannot be encoded or is out of bounds.
    #[error("invalid validity: {reason}")]
    InvalidValidity {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A datacenter name is not a DNS label and cannot be placed in an identity.
    #[error("datacenter {datacenter:?} cannot be used in an agent identity")]
    InvalidDatacenter {
        /// The offending segment, cut to a printable length.
        datacenter: String,
    },
    /// A hostname for a server certificate is neither a DNS name nor an IP address.
    #[error("{hostname:?} is neither a DNS name nor an IP address")]
    InvalidHostname {
        /// The offending hostname, cut to a printable length.
        hostname: String,
    },
    /// A certificate does not carry a well-formed Outpost agent identity.
    #[error("certificate carries no valid agent identity: {reason}")]
    InvalidIdentity {
        /// What is wrong with its subject alternative names.
        reason: &'static str,
    },
    /// A serial number in hex form is malformed.
    #[error("serial number {serial:?} is not 1–20 bytes of hex")]
    InvalidSerial {
        /// The offending serial, cut to a printable length.
        serial: String,
    },
    /// A CA fingerprint is not 64 hex digits.
    #[error("CA fingerprint must be 64 hex digits (SHA-256)")]
    InvalidFingerprint,
    /// A CA certificate does not match the pinned fingerprint.
    #[error("CA certificate does not match the pinned fingerprint")]
    PinMismatch,
    /// Key generation or signing failed inside the crypto library.
    #[error("{operation} failed")]
    Crypto {
        /// What was being done, e.g. "signing the agent certificate".
        operation: &'static str,
        /// The library's error.
        #[source]
        source: rcgen::Error,
    },
    /// rustls refused to build a TLS configuration from the given material.
    #[error("building the TLS configuration failed")]
    Tls(#[source] rustls::Error),
    /// rustls refused to build a certificate verifier (for example, an unparsable CRL).
    #[error("building the certificate verifier failed")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = CaError> = std::result::Result<T, E>;

/// Cuts hostile input to a length fit for an error message.
pub(crate) fn printable(s: &str) -> String {
    s.chars().take(80).collect()
}
