//! The internal CA as the gateway uses it: loaded from the store, unsealed with the key
//! file, and shared by every management instance on the same database.

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use outpost_ca::{CertificateAuthority, IssuedCert, KeyEncryptionKey, SealedCa};
use outpost_store::{SealedAuthority, Store};

/// The CA, with the gateway's server certificate.
pub struct Authority {
    ca: CertificateAuthority,
    /// Seals the CA key and tenants' secret values.
    kek: KeyEncryptionKey,
    /// Hex SHA-256 of the CA certificate: what agents pin.
    pub fingerprint: String,
    server_cert_pem: String,
    server_key_pem: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Lifetime of the gateway's own server certificate; reissued at every start.
const SERVER_CERT_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

impl Authority {
    /// Loads the CA from the store, creating it on the very first start. `key_file` holds
    /// the key that seals the CA's private key; it is created (mode 0600) when missing.
    /// Every instance sharing a database needs the same key file.
    pub async fn load_or_create(
        store: &Store,
        key_file: &Path,
        hostnames: &[String],
    ) -> anyhow::Result<Self> {
        let kek = load_or_create_kek(key_file)?;
        let sealed = match store.authority_get().await? {
            Some(s) => s,
            None => {
                let ca = CertificateAuthority::generate("Outpost agent CA")
                    .context("generating the CA")?;
                let SealedCa {
                    cert_pem,
                    sealed_key,
                } = ca.seal(&kek);
                store
                    .authority_get_or_create(&SealedAuthority {
                        cert_pem,
                        sealed_key,
                    })
                    .await?
            }
        };
        let ca = CertificateAuthority::unseal(
            &SealedCa { cert_pem: sealed.cert_pem, sealed_key: sealed.sealed_key },
            &kek,
        )
        .with_context(|| {
            format!(
                "unsealing the CA with {}: every management instance on one database needs the same key file",
                key_file.display()
            )
        })?;
        let (server, server_key_pem) = ca
            .issue_server_cert(hostnames, SERVER_CERT_TTL, SystemTime::now())
            .context("issuing the gateway's server certificate")?;
        Ok(Self {
            fingerprint: ca.fingerprint(),
            ca,
            kek,
            server_cert_pem: server.cert_pem,
            server_key_pem: server_key_pem.to_string(),
        })
    }

    /// The key that seals secrets at rest.
    pub fn kek(&self) -> &KeyEncryptionKey {
        &self.kek
    }

    /// The CA itself.
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// The gateway's server certificate and key, PEM.
    pub fn server_identity(&self) -> (&str, &str) {
        (&self.server_cert_pem, &self.server_key_pem)
    }

    /// Signs an agent's CSR for `dc`.
    pub fn sign(
        &self,
        csr_pem: &str,
        dc: &outpost_domain::DatacenterName,
        ttl: Duration,
    ) -> Result<IssuedCert, outpost_ca::CaError> {
        self.ca.sign_agent_csr(csr_pem, dc, ttl, SystemTime::now())
    }
}

fn load_or_create_kek(path: &Path) -> anyhow::Result<KeyEncryptionKey> {
    if path.is_file() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return KeyEncryptionKey::from_text(text.trim())
            .with_context(|| format!("{} is not a CA key file", path.display()));
    }
    let kek = KeyEncryptionKey::generate();
    crate::bootstrap::write_secret_file(path, &kek.to_text())
        .with_context(|| format!("writing the CA key file {}", path.display()))?;
    tracing::info!(path = %path.display(), "created the CA key file");
    Ok(kek)
}
