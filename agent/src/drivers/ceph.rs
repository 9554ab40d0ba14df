//! Ceph: object storage through the RADOS Gateway (its Admin Ops API for users, keys, quotas
//! and bucket stats; S3 for buckets and versioning) and the cluster's capacity from the Ceph
//! manager. The agent's only I/O with its datacenter's Ceph.
//!
//! - Requests are signed with SigV4 by `aws-sigv4` (the AWS SDK's signer), shaped for RGW's
//!   quirks: an `x-amz-content-sha256` header on every request, `UNSIGNED-PAYLOAD` for Admin
//!   Ops bodies, path-style addressing, and plain (never aws-chunked) bodies.
//! - Credentials come from the agent's own configuration, never from the management side.
//!   Secret keys are [`SecretKey`]s, whose `Debug` is redacted.
//! - Every call has a deadline and every mutating call is idempotent, so a reconciler can
//!   repeat it after a timeout or a restart and converge.
//! - Failures are [`CephError`]s, classified for people (quota, taken names, unreachable,
//!   refused credentials) by [`CephError::kind`].

mod admin;
mod capacity;
mod error;
mod rgw;
mod s3;

use std::{fmt, path::PathBuf};

pub use admin::{BucketStats, Quota, QuotaTarget, RgwUser};
pub use capacity::Capacity;
pub use error::{CephError, CephErrorKind};
pub use s3::Versioning;

/// How the agent reaches its datacenter's Ceph.
#[derive(Debug, Clone)]
pub struct CephConfig {
    /// The RADOS Gateway, `http(s)://host:port`, addressed path-style (no bucket DNS names).
    pub rgw_endpoint: http::Uri,
    /// Access key of an RGW user with the `users=*;buckets=*` admin caps.
    pub admin_access_key: String,
    /// Its secret key.
    pub admin_secret_key: SecretKey,
    /// The `ceph.conf` (naming the monitors and a keyring allowed `ceph df`) for capacity;
    /// `None` leaves the `ceph` CLI to its defaults (`$CEPH_CONF`, `/etc/ceph/ceph.conf`).
    pub ceph_conf: Option<PathBuf>,
}

/// An S3 secret key. Its `Debug` never shows the value, so it can sit in logged structs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a secret key.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for signing or for handing to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// One S3 key pair of an RGW user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Keys {
    /// The access key (an identifier, not a secret).
    pub access_key: String,
    /// The secret key.
    pub secret_key: SecretKey,
}

/// A handle on one datacenter's Ceph. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Ceph {
    rgw: rgw::Rgw,
    admin: S3Keys,
    ceph_conf: Option<PathBuf>,
}

impl fmt::Debug for Ceph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ceph")
            .field("rgw", &self.rgw.endpoint())
            .field("admin_access_key", &self.admin.access_key)
            .finish_non_exhaustive()
    }
}

impl Ceph {
    /// Checks the configuration and prepares the HTTP(S) client; connects to nothing yet.
    /// Fails with [`CephError::Config`] for an endpoint that is not `http(s)://host[:port]`.
    pub fn new(config: CephConfig) -> Result<Self, CephError> {
        Ok(Self {
            rgw: rgw::Rgw::new(config.rgw_endpoint)?,
            admin: S3Keys {
                access_key: config.admin_access_key,
                secret_key: config.admin_secret_key,
            },
            ceph_conf: config.ceph_conf,
        })
    }

    /// The RADOS Gateway's address, as clients of its buckets use it.
    pub fn endpoint(&self) -> &http::Uri {
        self.rgw.endpoint()
    }
}
