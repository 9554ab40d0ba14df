//! Ceph failures, classified for the people who read them in events and for the reconciler
//! that decides between retrying and reporting.

/// The boxed cause of a transport or parsing failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failed Ceph call. Each message names the operation and says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CephError {
    /// The configuration cannot be used.
    #[error("invalid Ceph configuration: {0}")]
    Config(String),
    /// The request could not be built or signed: a name or key holds characters that
    /// cannot go into a URL or header.
    #[error(
        "cannot {operation}: the request cannot be built; check the names and keys for unusual characters"
    )]
    InvalidRequest {
        /// What was being done.
        operation: String,
        /// What failed.
        #[source]
        source: BoxError,
    },
    /// No answer: connection refused or reset, or the deadline passed. Worth retrying.
    #[error("cannot {operation}: {peer} is unreachable or did not answer in time")]
    Unreachable {
        /// What was being done, e.g. `create bucket photos`.
        operation: String,
        /// Who did not answer, e.g. `the RADOS Gateway at http://10.0.0.5:7480/`.
        peer: String,
        /// The transport error, if there was one (none for a deadline).
        #[source]
        source: Option<BoxError>,
    },
    /// Ceph answered but cannot tell yet: a manager that just started has no statistics.
    /// Worth retrying.
    #[error("cannot {operation}: {reason}; try again shortly")]
    NotReady {
        /// What was being done.
        operation: String,
        /// Why not yet.
        reason: String,
    },
    /// RGW refused because a user or bucket quota (or the user's bucket limit) would be
    /// exceeded.
    #[error(
        "cannot {operation}: it would exceed a quota ({code}); raise the quota or delete data first"
    )]
    QuotaExceeded {
        /// What was being done.
        operation: String,
        /// RGW's error code (`QuotaExceeded`, `TooManyBuckets`).
        code: String,
    },
    /// The bucket name belongs to another RGW user (bucket names are global in a zone).
    #[error("cannot {operation}: the bucket name is taken by another user; choose another name")]
    BucketTaken {
        /// What was being done.
        operation: String,
    },
    /// The access key belongs to another RGW user (access keys are global in a zone).
    #[error(
        "cannot {operation}: the access key belongs to another user; choose another access key"
    )]
    KeyTaken {
        /// What was being done.
        operation: String,
    },
    /// RGW refused the credentials the call was signed with, or they lack the caps for it.
    #[error(
        "cannot {operation}: RGW refused access key {access_key} ({code}); check the key, its secret and, for admin calls, its users/buckets caps"
    )]
    AccessDenied {
        /// What was being done.
        operation: String,
        /// The access key that signed the call.
        access_key: String,
        /// RGW's error code (`AccessDenied`, `InvalidAccessKeyId`, `SignatureDoesNotMatch`, …).
        code: String,
    },
    /// The user or bucket does not exist.
    #[error("cannot {operation}: it does not exist ({code})")]
    NotFound {
        /// What was being done.
        operation: String,
        /// RGW's error code (`NoSuchUser`, `NoSuchBucket`, …).
        code: String,
    },
    /// Any other refusal.
    #[error("cannot {operation}: RGW answered {status} {code}")]
    Rejected {
        /// What was being done.
        operation: String,
        /// The HTTP status.
        status: u16,
        /// RGW's error code, or the status's reason when the answer had none.
        code: String,
    },
    /// A success answer that is not what RGW or `ceph df` documents.
    #[error("cannot {operation}: the answer could not be understood")]
    BadAnswer {
        /// What was being done.
        operation: String,
        /// What was wrong with it.
        #[source]
        source: BoxError,
    },
    /// The `ceph` CLI could not be run, or it failed.
    #[error("cannot {operation}: {reason}")]
    Cli {
        /// What was being done.
        operation: String,
        /// Why, e.g. its last line on stderr.
        reason: String,
    },
}

/// The class of a [`CephError`]: stable, for deciding and counting (never parse messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CephErrorKind {
    /// [`CephError::Config`], [`CephError::InvalidRequest`] or [`CephError::Cli`]: the
    /// setup or the input must be fixed.
    Config,
    /// [`CephError::Unreachable`] or [`CephError::NotReady`]: retry later.
    Unreachable,
    /// [`CephError::QuotaExceeded`].
    QuotaExceeded,
    /// [`CephError::BucketTaken`] or [`CephError::KeyTaken`]: the name is someone else's.
    NameTaken,
    /// [`CephError::AccessDenied`].
    AccessDenied,
    /// [`CephError::NotFound`].
    NotFound,
    /// [`CephError::Rejected`] or [`CephError::BadAnswer`].
    Other,
}

impl CephError {
    /// This error's class.
    pub fn kind(&self) -> CephErrorKind {
        match self {
            Self::Config(_) | Self::InvalidRequest { .. } | Self::Cli { .. } => {
                CephErrorKind::Config
            }
            Self::Unreachable { .. } | Self::NotReady { .. } => CephErrorKind::Unreachable,
            Self::QuotaExceeded { .. } => CephErrorKind::QuotaExceeded,
            Self::BucketTaken { .. } | Self::KeyTaken { .. } => CephErrorKind::NameTaken,
            Self::AccessDenied { .. } => CephErrorKind::AccessDenied,
            Self::NotFound { .. } => CephErrorKind::NotFound,
            Self::Rejected { .. } | Self::BadAnswer { .. } => CephErrorKind::Other,
        }
    }

    /// Classifies RGW's refusal of `operation` (signed with `access_key`) by its error code:
    /// the one place that knows RGW's codes.
    pub(super) fn from_rgw(
        operation: String,
        access_key: &str,
        status: http::StatusCode,
        code: Option<String>,
    ) -> Self {
        let code = code.unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("no error code")
                .to_owned()
        });
        match code.as_str() {
            "QuotaExceeded" | "TooManyBuckets" => Self::QuotaExceeded { operation, code },
            "BucketAlreadyExists" => Self::BucketTaken { operation },
            "KeyExists" => Self::KeyTaken { operation },
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "RequestTimeTooSkewed"
            | "UserSuspended" => Self::AccessDenied {
                operation,
                access_key: access_key.to_owned(),
                code,
            },
            "NoSuchUser" | "NoSuchBucket" | "NoSuchKey" => Self::NotFound { operation, code },
            _ => Self::Rejected {
                operation,
                status: status.as_u16(),
                code,
            },
        }
    }
}
