use kura_domain::policy::PasswordProblem;
use kura_domain::DomainError;
use kura_store::StoreError;

/// What went wrong in a use case. The HTTP layer maps each variant to a status and a safe
/// message in one place; `Internal` carries the cause for the log only.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid e-mail or password")]
    BadCredentials,
    #[error("{0}")]
    Invalid(#[from] DomainError),
    #[error("password {0}")]
    WeakPassword(PasswordProblem),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    QuotaExceeded(String),
    /// Too many failed logins: the account or address is locked for a while.
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: i64 },
    /// Stored data failed authentication (altered, truncated or moved blob).
    #[error("stored data failed its integrity check")]
    Tampered,
    /// A one-time code or link was refused for a reason the user should know (wrong,
    /// expired, used up); `code` is the error code, `message` says what to do.
    #[error("{message}")]
    Rejected {
        code: &'static str,
        message: &'static str,
    },
    /// Too many requests of this kind from this address or for this account: try later.
    #[error("too many requests; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: i64 },
    /// A dependency (database, blob storage) cannot be reached or did not answer in time;
    /// the request may be retried (503 with `Retry-After`). The cause is for the log only.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The disk under the database or the blob store is full (ENOSPC, EDQUOT, SQLITE_FULL).
    #[error("storage full: {0}")]
    StorageFull(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::Internal(msg.into())
    }
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid(DomainError::invalid(field, message))
    }

    /// A blob-store I/O error: a full disk or quota is [`ServiceError::StorageFull`], a
    /// timeout or unreachable store is [`ServiceError::Unavailable`], anything else internal.
    pub fn blob_io(context: &str, e: std::io::Error) -> Self {
        use std::io::ErrorKind;
        let full = matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
            || matches!(e.raw_os_error(), Some(28) | Some(122));
        if full {
            return ServiceError::StorageFull(format!("{context}: {e}"));
        }
        match e.kind() {
            ErrorKind::TimedOut
            | ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotConnected => ServiceError::Unavailable(format!("{context}: {e}")),
            _ => ServiceError::Internal(format!("{context}: {e}")),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ServiceError::NotFound,
            StoreError::Conflict(what) => ServiceError::Conflict(what.to_string()),
            StoreError::Unavailable(cause) => ServiceError::Unavailable(cause),
            StoreError::StorageFull => ServiceError::StorageFull("database".into()),
            StoreError::Serialization => {
                ServiceError::Conflict("a concurrent change won; try again".into())
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}
