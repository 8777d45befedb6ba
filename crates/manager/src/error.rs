//! The service layer's error type. Libraries return [`ServiceError`]; the HTTP layers map it to a
//! status (REST) or to the panel's serializable `AppError`. A 4xx-class error never changed state.
//! Causes stay typed ([`DbErr`], the node client's [`ClientError`]) up to here; the HTTP layers
//! log the internal ones and show their own messages.

use crate::node_client::ClientError;
use sea_orm::DbErr;

/// What went wrong in a service call.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0} not found")]
    NotFound(String),
    /// Bad input; `field` names it (the REST body key or form field).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The input clashes with existing state (duplicate name, host and port taken, …).
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    #[error("not authorized")]
    Unauthorized,
    /// Signed in, but the role does not allow this change (see `services::audit`).
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("too many attempts; try again later")]
    RateLimited,
    /// A node could not be reached or answered wrongly. The message is the client error's
    /// [`summary`](ClientError::summary) (nothing the address answered); the error is the source.
    #[error("node unreachable: {}", .0.summary())]
    Unreachable(#[source] ClientError),
    /// The node client could not be set up (see [`NodeClient::new`](crate::node_client::NodeClient::new)).
    #[error(transparent)]
    NodeClient(ClientError),
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn conflict(field: &str, message: impl Into<String>) -> ServiceError {
        ServiceError::Conflict {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The input field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ServiceError::Invalid { field, .. } | ServiceError::Conflict { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
