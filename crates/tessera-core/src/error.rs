//! The service layer's error: what went wrong, in terms a caller decides on.
//!
//! The HTTP adapter maps [`ErrorKind`] to a status code in exactly one place.
//! Messages are sentences safe to show a caller: never a secret, never an
//! internal cause (those are logged where they happen).

use crate::ErrorCode;
use std::fmt;

/// What the caller must decide about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input: malformed, wrong type, unknown field.
    Invalid,
    /// The input is well formed but breaks the integration's schema.
    Unprocessable,
    /// No credentials, or credentials that are not valid.
    Unauthenticated,
    /// Authenticated, but the role may not do this.
    Forbidden,
    /// No such resource (or one the caller may not know exists).
    NotFound,
    /// The resource exists already, or the request conflicts with its state.
    Conflict,
    /// The request body is over the size limit.
    TooLarge,
    /// A stored ciphertext or key failed authentication: tampered, moved, or the wrong master key.
    Integrity,
    /// A backend (database, key provider) is unreachable; retrying later may work.
    Unavailable,
    /// A third party (an OAuth provider, an upstream API) failed or refused.
    Upstream,
    /// The caller sent more requests than its rate limit allows.
    RateLimited,
    /// A bug or an unexpected state; details are in the server log.
    Internal,
}

/// An error from the service layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The category, mapped to a status code by the HTTP adapter.
    pub kind: ErrorKind,
    /// A stable code, e.g. `tenant_not_found` (every one is in [`ErrorCode`]).
    pub code: ErrorCode,
    /// A sentence for humans.
    pub message: String,
    /// The JSON path of the offending input field, when there is one.
    pub field: Option<String>,
    /// Seconds until a retry may succeed (rate limits).
    pub retry_after: Option<u64>,
}

impl ServiceError {
    /// Builds an error of any kind.
    pub fn new(kind: ErrorKind, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { kind, code, message: message.into(), field: None, retry_after: None }
    }

    /// Bad input, optionally naming the field.
    pub fn invalid(code: ErrorCode, message: impl Into<String>, field: Option<&str>) -> Self {
        Self { field: field.map(str::to_owned), ..Self::new(ErrorKind::Invalid, code, message) }
    }

    /// A schema violation naming the field.
    pub fn unprocessable(code: ErrorCode, message: impl Into<String>, field: &str) -> Self {
        Self { field: Some(field.to_owned()), ..Self::new(ErrorKind::Unprocessable, code, message) }
    }

    /// `what` does not exist (or is hidden from the caller).
    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }

    /// A conflict with current state.
    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }

    /// The role may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, ErrorCode::Forbidden, message)
    }

    /// No valid credentials.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, ErrorCode::Unauthenticated, message)
    }

    /// A backend is down.
    pub fn unavailable(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, code, message)
    }

    /// A third party failed or refused.
    pub fn upstream(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Upstream, code, message)
    }

    /// Over the rate limit; retry after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                ErrorKind::RateLimited,
                ErrorCode::RateLimited,
                "too many requests; retry after the time in Retry-After",
            )
        }
    }

    /// An unexpected failure; the cause must already be logged.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, ErrorCode::Internal, message)
    }

    /// The tenant does not exist or is not the caller's.
    pub fn tenant_not_found() -> Self {
        Self::not_found(ErrorCode::TenantNotFound, "no such tenant")
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ServiceError {}

impl From<crate::ports::StoreError> for ServiceError {
    fn from(e: crate::ports::StoreError) -> Self {
        use crate::ports::StoreError;
        match &e {
            StoreError::Conflict(what) => Self::conflict(ErrorCode::AlreadyExists, format!("{what} already exists")),
            StoreError::Unavailable { .. } => {
                tracing::error!(cause = %e.chain(), "metadata store unavailable");
                Self::unavailable(ErrorCode::StoreUnavailable, "the metadata store is unavailable; retry later")
            }
            StoreError::AuditHeadMoved => {
                tracing::error!("the audit chain head kept moving under this writer");
                Self::unavailable(ErrorCode::AuditUnavailable, "the audit log is busy; retry later")
            }
            StoreError::Other { .. } => {
                tracing::error!(cause = %e.chain(), "metadata store error");
                Self::internal("the metadata store failed; see the server log")
            }
        }
    }
}
