//! The one error type that crosses the server-function boundary.
//!
//! Every `#[server]` fn returns `Result<_, AppError>`. The server maps `manager::ServiceError`
//! into it (see `crate::ssr::service_error`); the browser matches on the variants — validation
//! errors keep the name of the offending field so the page can show the message beside it.
//! Errors are never flattened to strings on the way.

use serde::{Deserialize, Serialize};
use server_fn::{error::FromServerFnError, error::ServerFnErrorErr};

/// Field key used for errors that belong to the whole form rather than one input.
pub const FORM: &str = "form";

/// Error returned by every server function of the panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
// Externally tagged (`{"invalid":{…}}`, `"unauthorized"`): the plainest form serde reads, so
// every bundle carries the smallest reader for it.
#[serde(rename_all = "snake_case")]
pub enum AppError {
    /// A value failed validation; `field` names the input (e.g. `quota_bytes`).
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// A value clashes with existing data (e.g. a duplicate user name).
    #[error("{message}")]
    Conflict { field: String, message: String },
    /// The thing asked for does not exist (any more).
    #[error("{0} was not found")]
    NotFound(String),
    /// No valid session: the browser must sign in again.
    #[error("Your session has ended. Please sign in again.")]
    Unauthorized,
    /// Signed in, but the administrator's role does not allow this change.
    #[error("Not allowed: {0}.")]
    Forbidden(String),
    /// Too many attempts (sign-in rate limit).
    #[error("Too many attempts. Wait a minute and try again.")]
    RateLimited,
    /// A node could not be reached during a connection check.
    #[error("The node could not be reached: {0}")]
    Unreachable(String),
    /// Something failed on the server; details are in the arch-manager log, not here.
    #[error("Something went wrong on the server. The arch-manager log has the details.")]
    Internal,
    /// The request itself failed (network, encoding) before or after the function ran; what
    /// failed, as text.
    #[error("The request failed: {0}")]
    Request(String),
}

impl AppError {
    /// Shorthand for a validation error on `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The input this error belongs to, if it belongs to one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } | Self::Conflict { field, .. } => Some(field),
            _ => None,
        }
    }

    /// True when the browser should go back to the sign-in page.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Unauthorized)
    }
}

/// A manager message fragment ("must be …") as a sentence for the panel ("Must be ….").
pub fn sentence(message: &str) -> String {
    let mut chars = message.trim().chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.is_empty() && !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A value refused by a shared rule, with the message the REST API gives, as a sentence.
impl From<rules::Invalid> for AppError {
    fn from(e: rules::Invalid) -> Self {
        Self::Invalid {
            message: sentence(&e.message),
            field: e.field,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = crate::api::JsonText;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Request(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json_with_the_field_name() {
        let err = AppError::invalid("quota_bytes", "must not be negative");
        let json = serde_json::to_string(&err).expect("serialize");
        assert_eq!(
            json,
            r#"{"invalid":{"field":"quota_bytes","message":"must not be negative"}}"#
        );
        let back: AppError = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, err);
        assert_eq!(back.field(), Some("quota_bytes"));
    }

    #[test]
    fn unit_variants_serialize_without_detail() {
        assert_eq!(
            serde_json::to_string(&AppError::Unauthorized).expect("serialize"),
            r#""unauthorized""#
        );
    }
}
