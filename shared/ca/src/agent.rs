//! The agent's own key pair and its certificate signing request.

use std::fmt;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use zeroize::Zeroizing;

use crate::error::{CaError, Result};

/// An agent's private key (ECDSA P-256). It is generated on the agent and never leaves it:
/// only the CSR from [`AgentKey::csr_pem`] is sent. `Debug` never shows the key.
pub struct AgentKey {
    key: KeyPair,
}

impl fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentKey([redacted])")
    }
}

impl AgentKey {
    /// A new random key.
    pub fn generate() -> Result<Self> {
        let key = KeyPair::generate().map_err(|source| CaError::Crypto {
            operation: "generating the agent key",
            source,
        })?;
        Ok(Self { key })
    }

    /// Loads a key saved with [`Self::to_pem`]; anything but a PKCS#8 PEM private key is
    /// [`CaError::InvalidKey`].
    pub fn from_pem(pem: &str) -> Result<Self> {
        let key = KeyPair::from_pem(pem).map_err(|source| CaError::InvalidKey {
            what: "agent key",
            source,
        })?;
        Ok(Self { key })
    }

    /// The key as PKCS#8 PEM, for the agent to store (readable by the agent only) and to
    /// pass to [`crate::pinned_client_config`]. Zeroed when dropped.
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.key.serialize_pem())
    }

    /// A certificate signing request for this key. It asks for nothing but the key: the CA
    /// chooses the identity ([`crate::CertificateAuthority::sign_agent_csr`]), so a CSR for
    /// one datacenter can be reused for another without change.
    pub fn csr_pem(&self) -> Result<String> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "outpost-agent");
        params.distinguished_name = dn;
        let csr = params
            .serialize_request(&self.key)
            .map_err(|source| CaError::Crypto {
                operation: "signing the certificate request",
                source,
            })?;
        csr.pem().map_err(|source| CaError::Crypto {
            operation: "encoding the certificate request",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_key_round_trips_through_pem() {
        let key = AgentKey::generate().unwrap();
        let pem = key.to_pem();
        let back = AgentKey::from_pem(&pem).unwrap();
        assert_eq!(back.to_pem().as_str(), pem.as_str());
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn malformed_agent_keys_are_refused() {
        for bad in [
            "",
            "garbage",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            assert!(matches!(
                AgentKey::from_pem(bad),
                Err(CaError::InvalidKey { .. })
            ));
        }
    }
}
