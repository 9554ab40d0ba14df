//! Join tokens: the one-time secret an admin hands to a new agent for enrollment.
//!
//! A token is 256 random bits, so a single fast hash is enough to store it: there is no
//! password to brute-force. Only the hash is stored; the text is shown once. This module
//! does not enforce single use or expiry: the caller's store must consume the token
//! atomically on first use and refuse it after its expiry time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Prefix of every join token, so a leaked one is recognisable (e.g. by secret scanners).
pub const JOIN_TOKEN_PREFIX: &str = "ojt_";

/// A freshly generated join token. `Debug` shows only the hash.
#[derive(Clone)]
pub struct JoinToken {
    text: Zeroizing<String>,
    hash: String,
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("text", &"[redacted]")
            .field("hash", &self.hash)
            .finish()
    }
}

impl JoinToken {
    /// A new token: [`JOIN_TOKEN_PREFIX`] and 256 random bits in URL-safe base64.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        let text = Zeroizing::new(format!(
            "{JOIN_TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes.as_ref())
        ));
        let hash = join_token_hash(&text);
        Self { text, hash }
    }

    /// The secret text, to show the admin once; never store or log it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value to store and look the token up by; equal to [`join_token_hash`] of
    /// [`Self::text`].
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// The lowercase hex SHA-256 of a presented token's text, to look it up in the store.
///
/// Any input hashes, so a malformed token simply matches nothing; the lookup by hash means
/// no secret is ever compared byte by byte.
pub fn join_token_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_tokens_are_prefixed_random_and_hash_consistently() {
        let a = JoinToken::generate();
        let b = JoinToken::generate();
        assert!(a.text().starts_with(JOIN_TOKEN_PREFIX));
        assert_eq!(a.text().len(), JOIN_TOKEN_PREFIX.len() + 43);
        assert_ne!(a.text(), b.text());
        assert_eq!(join_token_hash(a.text()), a.hash());
        assert_eq!(a.hash().len(), 64);
        assert!(!format!("{a:?}").contains(a.text()));
    }
}
