//! Authentication: bearer API tokens. Tokens are 256-bit random secrets; the store keeps only
//! their SHA-256 (a slow hash buys nothing for secrets this long), so a database leak reveals
//! no usable token.
//!
//! Resolved principals are cached for a few seconds, because every call authenticates and
//! the lookup is two queries. Changes made through this process (revocations, role changes)
//! clear the cache at once; changes made by another management instance on a shared
//! database take effect within [`CACHE_TTL`].

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use outpost_domain::authz::Principal;
use outpost_store::Store;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// How long a resolved token is trusted without asking the store again.
pub const CACHE_TTL: Duration = Duration::from_secs(2);
/// Most cached tokens; beyond this the cache is emptied rather than grown.
const CACHE_CAPACITY: usize = 10_000;
/// Every token starts with this, so leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "opt_";

/// A new random token and the hash the store keeps of it.
pub fn new_token() -> (String, String) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = token_hash(&token);
    (token, hash)
}

/// Hex SHA-256 of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Turns `authorization` metadata into a [`Principal`].
#[derive(Debug)]
pub struct Authenticator {
    store: Store,
    cache: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl Authenticator {
    /// An authenticator over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The caller named by an `authorization: Bearer <token>` value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let token = authorization
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(ApiError::Unauthenticated(
                "missing credentials: send the header 'authorization: Bearer <token>'",
            ))?;
        let hash = token_hash(token);
        if let Some(p) = self.cached(&hash) {
            return Ok(p);
        }
        let principal = self
            .store
            .principal_for_token(&hash, outpost_domain::Timestamp::now())
            .await?
            .ok_or(ApiError::Unauthenticated(
                "the token is unknown, expired or revoked",
            ))?;
        self.remember(hash, principal.clone());
        Ok(principal)
    }

    fn cached(&self, hash: &str) -> Option<Principal> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(hash)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(p, _)| p.clone())
    }

    fn remember(&self, hash: String, principal: Principal) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(hash, (principal, Instant::now()));
    }

    /// Forgets every cached principal; called after any change to tokens, users, teams or
    /// role bindings, so revocations and role changes apply to the very next call.
    pub fn invalidate(&self) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}
