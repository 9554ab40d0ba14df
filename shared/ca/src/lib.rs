//! Outpost's internal certificate authority for the agent link (DESIGN §3).
//!
//! It owns the CA key and certificate, signs agent CSRs with a CA-chosen identity
//! (`spiffe://outpost/dc/<datacenter>`), issues the gateway's server certificate, signs
//! revocation lists, computes the fingerprint agents pin, builds the rustls configurations
//! for both ends of the link, and generates and hashes join tokens.
//!
//! It is a pure library: no files, no database, no network, no global state (the rustls
//! crypto provider is passed explicitly, never installed). The management service stores
//! what it produces ([`SealedCa`], serials, token hashes) and enforces what needs state
//! (single-use tokens, expiry, the revoked list); the agent stores its own key.
//!
//! It is separate from the management service because the agent needs half of it (its key,
//! the CSR, the pinned client configuration) and must not depend on the management side,
//! and because the code that decides who an agent is should be small enough to review alone.

#![warn(missing_docs)]

mod agent;
mod authority;
mod error;
mod identity;
mod join_token;
mod seal;
mod tls;
mod validity;

pub use agent::AgentKey;
pub use authority::{CA_VALIDITY, CRL_VALIDITY, CertificateAuthority, IssuedCert};
pub use error::{CaError, Result};
pub use identity::{agent_identity, fingerprint_of_pem, not_after_of, serial_of, validity_of};
pub use join_token::{JOIN_TOKEN_PREFIX, JoinToken, join_token_hash};
pub use seal::{KeyEncryptionKey, SealedCa};
pub use tls::{api_tls_config, pinned_client_config, server_tls_config};
pub use validity::CLOCK_SKEW;
