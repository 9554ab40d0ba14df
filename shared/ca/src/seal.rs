//! Sealing the CA private key, and tenants' secret values, so neither is stored in clear.
//!
//! The key is encrypted with XChaCha20-Poly1305 under a key-encryption key (KEK) that lives
//! outside the database (a key file). The CA certificate's DER is the associated data, so a
//! sealed key only opens next to the certificate it was sealed with: a database row whose
//! certificate was swapped fails to unseal instead of pairing a key with a foreign cert.
//! The random 192-bit nonce makes nonce reuse under one KEK negligible without a counter.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::Aead;
use chacha20poly1305::aead::Payload;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rcgen::KeyPair;
use zeroize::Zeroizing;

use crate::authority::CertificateAuthority;
use crate::error::{CaError, Result};
use crate::identity::single_cert_from_pem;

/// Format byte at the start of every sealed key, so the format can change later.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;
/// Domain separation: this AEAD key seals nothing else, but the label keeps it that way.
const AAD_LABEL: &[u8] = b"outpost-ca sealed key v1\0";
/// The same for tenants' secret values, so a sealed CA key can never pass for one.
const SECRET_AAD_LABEL: &[u8] = b"outpost secret value v1\0";

/// A 256-bit key that seals the CA private key. `Debug` never shows it, and its memory is
/// zeroed on drop.
#[derive(Clone)]
pub struct KeyEncryptionKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

impl KeyEncryptionKey {
    /// A new random key from the operating system's CSPRNG (via a reseeding thread RNG).
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        Self(key)
    }

    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    /// The text form for a key file: standard base64 of the 32 bytes, no newline.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    /// Parses [`Self::to_text`] output. Surrounding whitespace (a trailing newline in a key
    /// file) is ignored; anything that is not exactly 32 bytes of base64 is
    /// [`CaError::InvalidKeyEncryptionKey`].
    pub fn from_text(text: &str) -> Result<Self> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| CaError::InvalidKeyEncryptionKey)?,
        );
        let key: &[u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CaError::InvalidKeyEncryptionKey)?;
        Ok(Self::from_bytes(key))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        let key: &[u8; 32] = &self.0;
        XChaCha20Poly1305::new(key.into())
    }

    /// Seals `msg` bound to `aad`: a format byte, a fresh random nonce, ciphertext and tag.
    fn seal_bytes(&self, msg: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(&XNonce::from(nonce), Payload { msg, aad })
            .expect("encryption fails only beyond the cipher's 256 GiB length limit");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens [`Self::seal_bytes`] output; anything else is [`CaError::Unseal`].
    fn open_bytes(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let (nonce, ciphertext) = match sealed.split_first() {
            Some((&FORMAT_V1, rest)) if rest.len() > NONCE_LEN => rest.split_at(NONCE_LEN),
            _ => return Err(CaError::Unseal),
        };
        let nonce = XNonce::try_from(nonce).map_err(|_| CaError::Unseal)?;
        self.cipher()
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CaError::Unseal)
    }

    /// Seals a tenant's secret value for storage, bound to `owner` (its full name, e.g.
    /// `…/services/web/secrets/TOKEN`), so a sealed value moved to another row fails to
    /// open instead of leaking into the wrong place.
    pub fn seal_secret(&self, value: &[u8], owner: &str) -> Vec<u8> {
        self.seal_bytes(value, &[SECRET_AAD_LABEL, owner.as_bytes()].concat())
    }

    /// Opens [`Self::seal_secret`] output for the same `owner`.
    pub fn open_secret(&self, sealed: &[u8], owner: &str) -> Result<Zeroizing<Vec<u8>>> {
        self.open_bytes(sealed, &[SECRET_AAD_LABEL, owner.as_bytes()].concat())
    }
}

/// A CA as it is stored: the certificate in clear and the private key sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCa {
    /// The CA certificate, PEM-encoded.
    pub cert_pem: String,
    /// The sealed private key: a format byte, the nonce, then ciphertext and tag.
    pub sealed_key: Vec<u8>,
}

impl CertificateAuthority {
    /// Seals this CA for storage under `kek`. Each call uses a fresh nonce, so sealing
    /// twice gives different bytes that both unseal to the same CA.
    pub fn seal(&self, kek: &KeyEncryptionKey) -> SealedCa {
        SealedCa {
            cert_pem: self.cert_pem().to_owned(),
            sealed_key: kek.seal_bytes(self.key_der(), &associated_data(self.cert_der())),
        }
    }

    /// Opens a sealed CA. A wrong KEK, a swapped certificate or a damaged sealed key all
    /// give [`CaError::Unseal`]; a malformed certificate PEM gives [`CaError::Malformed`].
    /// The decrypted key is checked against the certificate before use.
    pub fn unseal(sealed: &SealedCa, kek: &KeyEncryptionKey) -> Result<Self> {
        let cert_der = single_cert_from_pem(&sealed.cert_pem, "CA certificate PEM")?;
        let key_der = kek.open_bytes(&sealed.sealed_key, &associated_data(&cert_der))?;
        let key = KeyPair::try_from(key_der.as_slice()).map_err(|source| CaError::InvalidKey {
            what: "unsealed CA key",
            source,
        })?;
        Self::from_parts(sealed.cert_pem.clone(), key)
    }
}

fn associated_data(cert_der: &[u8]) -> Vec<u8> {
    [AAD_LABEL, cert_der].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_ca_round_trips_and_keeps_signing() {
        let ca = CertificateAuthority::generate("outpost test").unwrap();
        let kek = KeyEncryptionKey::generate();
        let sealed = ca.seal(&kek);
        assert!(!sealed.cert_pem.is_empty());
        let reopened = CertificateAuthority::unseal(&sealed, &kek).unwrap();
        assert_eq!(reopened.fingerprint(), ca.fingerprint());
        assert_eq!(reopened.key_der(), ca.key_der());
        // Sealing twice uses fresh nonces.
        assert_ne!(ca.seal(&kek).sealed_key, sealed.sealed_key);
    }

    #[test]
    fn secrets_open_only_for_their_owner_and_key() {
        let kek = KeyEncryptionKey::generate();
        let sealed = kek.seal_secret(b"hunter2", "services/web/secrets/TOKEN");
        assert!(
            !sealed.windows(7).any(|w| w == b"hunter2"),
            "stored in clear"
        );
        let opened = kek
            .open_secret(&sealed, "services/web/secrets/TOKEN")
            .unwrap();
        assert_eq!(opened.as_slice(), b"hunter2");
        for err in [
            kek.open_secret(&sealed, "services/api/secrets/TOKEN"),
            KeyEncryptionKey::generate().open_secret(&sealed, "services/web/secrets/TOKEN"),
            kek.open_secret(&sealed[..10], "services/web/secrets/TOKEN"),
        ] {
            assert!(matches!(err, Err(CaError::Unseal)));
        }
    }

    #[test]
    fn wrong_kek_is_refused() {
        let ca = CertificateAuthority::generate("outpost test").unwrap();
        let sealed = ca.seal(&KeyEncryptionKey::generate());
        let err = CertificateAuthority::unseal(&sealed, &KeyEncryptionKey::generate()).unwrap_err();
        assert!(matches!(err, CaError::Unseal), "{err:?}");
        assert!(err.to_string().contains("wrong key-encryption key"));
    }

    #[test]
    fn key_paired_with_another_certificate_is_refused() {
        let kek = KeyEncryptionKey::generate();
        let a = CertificateAuthority::generate("a").unwrap().seal(&kek);
        let b = CertificateAuthority::generate("b").unwrap().seal(&kek);
        let swapped = SealedCa {
            cert_pem: b.cert_pem,
            sealed_key: a.sealed_key,
        };
        let err = CertificateAuthority::unseal(&swapped, &kek).unwrap_err();
        assert!(matches!(err, CaError::Unseal), "{err:?}");
    }

    #[test]
    fn damaged_sealed_keys_are_refused_without_panicking() {
        let kek = KeyEncryptionKey::generate();
        let good = CertificateAuthority::generate("a").unwrap().seal(&kek);
        let mut flipped = good.sealed_key.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        for sealed_key in [
            vec![],
            vec![FORMAT_V1],
            vec![2; 80],
            good.sealed_key[..30].to_vec(),
            flipped,
        ] {
            let sealed = SealedCa {
                cert_pem: good.cert_pem.clone(),
                sealed_key,
            };
            assert!(matches!(
                CertificateAuthority::unseal(&sealed, &kek),
                Err(CaError::Unseal)
            ));
        }
        let garbage_cert = SealedCa {
            cert_pem: "not a pem".into(),
            sealed_key: good.sealed_key,
        };
        assert!(matches!(
            CertificateAuthority::unseal(&garbage_cert, &kek),
            Err(CaError::Malformed { .. })
        ));
    }

    #[test]
    fn kek_text_round_trips_and_rejects_wrong_lengths() {
        let kek = KeyEncryptionKey::from_bytes(&[7; 32]);
        let text = kek.to_text();
        let back = KeyEncryptionKey::from_text(&format!("{}\n", text.as_str())).unwrap();
        assert_eq!(back.0.as_ref(), &[7; 32]);
        for bad in [
            "",
            "not base64!",
            &STANDARD.encode([1u8; 31]),
            &STANDARD.encode([1u8; 33]),
        ] {
            assert!(matches!(
                KeyEncryptionKey::from_text(bad),
                Err(CaError::InvalidKeyEncryptionKey)
            ));
        }
        let shown = format!("{kek:?}");
        assert!(!shown.contains(text.as_str()) && shown.contains("redacted"));
    }
}
