//! Typed events fanned out to the panel (SSE) and anything else that listens.

use serde::Serialize;
use tokio::sync::broadcast;

/// Something that changed and that a live view may want to show.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A node's health, times, usage or applied version changed.
    Node {
        id: i64,
        push_status: String,
        pull_status: String,
        pushed_at: i64,
        pulled_at: i64,
        usage_bytes: i64,
        applied_version: Option<String>,
        last_error: Option<String>,
    },
    NodeRemoved {
        id: i64,
    },
    NodesChanged,
    UsersChanged,
    /// A user's usage or enabled state changed through accounting or quotas.
    UserUsage {
        id: i64,
        usage_bytes: i64,
        enabled: bool,
    },
    SettingsChanged,
}

impl Event {
    /// The SSE event name: the `type` tag.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Node { .. } => "node",
            Event::NodeRemoved { .. } => "node_removed",
            Event::NodesChanged => "nodes_changed",
            Event::UsersChanged => "users_changed",
            Event::UserUsage { .. } => "user_usage",
            Event::SettingsChanged => "settings_changed",
        }
    }

    pub(crate) fn node(n: &crate::entity::node::Model) -> Event {
        Event::Node {
            id: n.id,
            push_status: n.push_status.as_str().to_owned(),
            pull_status: n.pull_status.as_str().to_owned(),
            pushed_at: n.pushed_at,
            pulled_at: n.pulled_at,
            usage_bytes: n.usage_bytes,
            applied_version: n.applied_version.clone(),
            last_error: n.last_error.clone(),
        }
    }
}

/// The broadcast hub. Sending never blocks; slow subscribers lose old events (and should refetch).
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Events {
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    pub fn send(&self, event: Event) {
        // No subscribers is fine.
        let _ = self.tx.send(event);
    }
}
