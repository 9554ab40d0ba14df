//! `ApiError`, the management API's one error type, and the single place it becomes a gRPC
//! status: each variant maps to exactly one code, with `google.rpc` details a client can read.

use outpost_domain::{FieldViolation, Violations, authz::Denial};
pub use outpost_process::ErrorChain;
use outpost_store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No usable credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The resource does not exist, or the caller may not know that it does.
    #[error("{kind} {name} not found")]
    NotFound {
        /// Resource kind.
        kind: &'static str,
        /// Resource name.
        name: String,
    },
    /// The caller can see the resource but lacks the role for this call.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The request is malformed; each bad field is named.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Violations),
    /// The resource exists already.
    #[error("{kind} {name} already exists")]
    AlreadyExists {
        /// Resource kind.
        kind: &'static str,
        /// Resource name.
        name: String,
    },
    /// A concurrent change won (stale etag); read again and retry.
    #[error("{0}")]
    Aborted(String),
    /// The call is not allowed in the resource's current state.
    #[error("{description}")]
    FailedPrecondition {
        /// The resource whose state forbids the call.
        subject: String,
        /// Why, and what to do instead.
        description: String,
    },
    /// A limit on what one caller may hold was reached; try again later, or ask for less.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Something the call depends on (a datacenter's agent) cannot serve it now; retrying
    /// later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A server-side failure; details are logged, never sent.
    #[error("internal error")]
    Internal,
}

fn describe(v: &Violations) -> String {
    v.0.iter()
        .map(|f| format!("{}: {}", f.field, f.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// A single bad field.
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = Violations::default();
        v.add(field, description);
        Self::InvalidArgument(v)
    }

    /// The gRPC code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::NotFound { .. } => Code::NotFound,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::AlreadyExists { .. } => Code::AlreadyExists,
            Self::Aborted(_) => Code::Aborted,
            Self::FailedPrecondition { .. } => Code::FailedPrecondition,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Internal => Code::Internal,
        }
    }

    /// Whether a request with an idempotency key that failed this way may have lost a race
    /// to its own retry, whose stored answer should then be returned instead.
    pub fn may_be_retry_race(&self) -> bool {
        matches!(self, Self::AlreadyExists { .. } | Self::Aborted(_))
    }

    /// Maps an authorization refusal about `kind` `name`.
    pub fn denied(denial: Denial, kind: &'static str, name: impl Into<String>) -> Self {
        match denial {
            Denial::Hidden => Self::NotFound {
                kind,
                name: name.into(),
            },
            Denial::Forbidden(why) => Self::PermissionDenied(why.to_owned()),
        }
    }
}

impl From<Violations> for ApiError {
    fn from(v: Violations) -> Self {
        Self::InvalidArgument(v)
    }
}

impl From<outpost_domain::lifecycle::NothingToDeploy> for ApiError {
    fn from(e: outpost_domain::lifecycle::NothingToDeploy) -> Self {
        Self::FailedPrecondition {
            description: e.to_string(),
            subject: e.0.to_string(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { kind, name } => Self::NotFound { kind, name },
            StoreError::AlreadyExists { kind, name } => Self::AlreadyExists { kind, name },
            e @ StoreError::StaleEtag { .. } => Self::Aborted(e.to_string()),
            e @ StoreError::ConcurrentChange(_) => Self::Aborted(e.to_string()),
            StoreError::InUse { kind, name, detail } => Self::FailedPrecondition {
                description: format!("{kind} {name} {detail}"),
                subject: name,
            },
            StoreError::InvalidPageToken => {
                Self::field("page_token", outpost_store::PAGE_TOKEN_MISMATCH)
            }
            StoreError::NotAllowed { kind, name, detail } => Self::FailedPrecondition {
                description: format!("{kind} {name}: {detail}"),
                subject: name,
            },
            e @ StoreError::Unavailable(_) => {
                // An outage of the database is for a person; the caller may retry.
                tracing::error!(error = %ErrorChain(&e), "store call failed");
                Self::Unavailable("the database cannot be reached; retry shortly".into())
            }
            e @ (StoreError::Corrupt { .. }
            | StoreError::UnsupportedUrl
            | StoreError::Migrate(_)
            | StoreError::Backend(_)) => {
                // Handled here, so logged here: the caller only learns "internal error".
                tracing::error!(error = %ErrorChain(&e), "store call failed");
                Self::Internal
            }
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let message = err.to_string();
        let code = err.code();
        let details = match err {
            ApiError::InvalidArgument(v) => {
                let violations: Vec<_> =
                    v.0.into_iter()
                        .map(|FieldViolation { field, description }| {
                            tonic_types::FieldViolation::new(field, description)
                        })
                        .collect();
                ErrorDetails::with_bad_request(violations)
            }
            ApiError::FailedPrecondition {
                subject,
                description,
            } => ErrorDetails::with_precondition_failure_violation("STATE", subject, description),
            ApiError::NotFound { kind, name } | ApiError::AlreadyExists { kind, name } => {
                ErrorDetails::with_resource_info(kind, name, "", "")
            }
            _ => return Status::new(code, message),
        };
        Status::with_error_details(code, message, details)
    }
}

/// Stable upper-snake name of a gRPC code, as in the gRPC spec (`NOT_FOUND`); used for audit
/// records and metric labels, which must not depend on `Debug` output.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
