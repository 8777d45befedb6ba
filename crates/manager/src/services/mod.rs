//! The service layer: every state change of the manager goes through here, from the REST API,
//! the panel's server functions and the CLI alike. Each change that affects generated configs
//! bumps `settings.config_updated_at` in the same transaction and signals the coordinator.

pub mod admins;
pub mod api_tokens;
pub mod audit;
pub mod auth;
pub mod dashboard;
pub mod login_limit;
pub mod nodes;
pub mod settings;
pub mod subscriptions;
pub mod users;

use crate::desired::DesiredVersions;
use crate::entity::node;
use crate::events::{self, Events};
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use tokio::sync::Notify;

/// Wakes the coordinator's sync loop after a config-relevant change.
#[derive(Clone, Default)]
pub struct Changes(Arc<Notify>);

impl Changes {
    pub fn notify(&self) {
        self.0.notify_one();
    }

    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

/// What every service holds: the pool, the event hub, the change signal and the nodes' desired
/// versions (shared with the coordinator, which keeps them current).
#[derive(Clone)]
pub(crate) struct Ctx {
    pub db: DatabaseConnection,
    pub events: Events,
    pub changes: Changes,
    pub desired: DesiredVersions,
}

impl Ctx {
    /// Sends the live event of node `row` (see [`events::node`]).
    pub fn send_node(&self, row: &node::Model) {
        self.events.send(events::node(row, &self.desired));
    }
}

impl From<rules::Invalid> for crate::ServiceError {
    fn from(e: rules::Invalid) -> Self {
        crate::ServiceError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

/// Maps a unique-constraint violation to a field conflict; other DB errors pass through.
pub(crate) fn unique_violation(
    e: sea_orm::DbErr,
    field: &str,
    message: &str,
) -> crate::ServiceError {
    match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            crate::ServiceError::conflict(field, message)
        }
        _ => crate::ServiceError::Db(e),
    }
}
