//! The store's error type.

/// Why a store call failed. The API layer maps each variant to one gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such resource (in this tenant).
    #[error("{kind} {name} not found")]
    NotFound {
        /// Resource kind, e.g. `project`.
        kind: &'static str,
        /// Full resource name.
        name: String,
    },
    /// A resource with this name exists already.
    #[error("{kind} {name} already exists")]
    AlreadyExists {
        /// Resource kind.
        kind: &'static str,
        /// Full resource name.
        name: String,
    },
    /// The caller's etag is not the resource's current one.
    #[error("{kind} {name} was changed by someone else (stale etag); read it again and retry")]
    StaleEtag {
        /// Resource kind.
        kind: &'static str,
        /// Full resource name.
        name: String,
    },
    /// The resource still has dependents and the caller did not ask to cascade.
    #[error("{kind} {name} {detail}")]
    InUse {
        /// Resource kind.
        kind: &'static str,
        /// Full resource name.
        name: String,
        /// What still depends on it, and how to proceed.
        detail: String,
    },
    /// The resource's state does not allow the operation.
    #[error("{kind} {name}: {detail}")]
    NotAllowed {
        /// Resource kind.
        kind: &'static str,
        /// Full resource name.
        name: String,
        /// Why not, naming the state, and what to do instead.
        detail: String,
    },
    /// A referenced resource vanished, or a dependent appeared, in a concurrent transaction.
    #[error("a related resource was created or deleted concurrently; retry")]
    ConcurrentChange(#[source] sqlx::Error),
    /// A page token whose key cannot be one this list hands out: a client's mistake.
    #[error("page_token {PAGE_TOKEN_MISMATCH}")]
    InvalidPageToken,
    /// A stored row could not be decoded.
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// What failed to decode.
        what: String,
    },
    /// The database URL names no supported backend.
    #[error("store URL must start with sqlite: or postgres:")]
    UnsupportedUrl,
    /// Applying migrations failed.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database cannot be reached now (a restart, a network cut, every connection busy):
    /// retrying later may work, and nothing was changed by the failed call.
    #[error("the database cannot be reached")]
    Unavailable(#[source] sqlx::Error),
    /// The database failed.
    #[error("database query failed")]
    Backend(#[source] sqlx::Error),
}

/// Why a page token is refused.
pub const PAGE_TOKEN_MISMATCH: &str = "is not a token from a previous call with the same parent";

impl StoreError {
    /// Classifies a failed write: constraint violations become [`StoreError::AlreadyExists`]
    /// (for `kind`/`name`) or [`StoreError::ConcurrentChange`].
    pub(crate) fn from_write(
        kind: &'static str,
        name: impl std::fmt::Display,
    ) -> impl FnOnce(sqlx::Error) -> Self {
        move |err| match err.as_database_error() {
            Some(db) if db.is_unique_violation() => Self::AlreadyExists {
                kind,
                name: name.to_string(),
            },
            Some(db) if db.is_foreign_key_violation() => Self::ConcurrentChange(err),
            _ => backend(err),
        }
    }

    /// Whether this failure was caused by a unique-key collision or a concurrent change:
    /// the cases where a retried request may find its first answer stored.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::AlreadyExists { .. } | Self::ConcurrentChange(_))
    }
}

/// Wraps a query failure, telling a database that cannot be reached from one that failed.
pub(crate) fn backend(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err),
        _ => StoreError::Backend(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_out_of_reach_is_told_from_one_that_failed() {
        let io = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed");
        for unreachable in [
            sqlx::Error::Io(io),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
        ] {
            assert!(matches!(backend(unreachable), StoreError::Unavailable(_)));
        }
        assert!(matches!(
            backend(sqlx::Error::RowNotFound),
            StoreError::Backend(_)
        ));
    }
}
