//! Typed events fanned out to the panel (SSE) and anything else that listens. The event type and
//! its wire form live in `rules::event`, shared with the panel's decoder; this module builds
//! events from the manager's rows and holds the broadcast hub.

use crate::desired::DesiredVersions;
pub use rules::event::{Event, NodeLive, UserLive, RESYNC};
use tokio::sync::broadcast;

/// The live event of a node row, with the node's desired version from `desired`: every node event
/// the manager sends is built here.
pub(crate) fn node(n: &crate::entity::node::Model, desired: &DesiredVersions) -> Event {
    Event::Node(NodeLive {
        id: n.id,
        push_status: n.push_status.as_str().to_owned(),
        pull_status: n.pull_status.as_str().to_owned(),
        pushed_at: n.pushed_at,
        pulled_at: n.pulled_at,
        usage_bytes: n.usage_bytes,
        applied_version: n.applied_version.clone(),
        desired_version: desired.get(n.id),
        last_error: n.last_error.clone(),
        tls_fingerprint: n.tls_fingerprint.clone(),
        presented_fingerprint: n.presented_fingerprint.clone(),
        refused_calls: n.refused_calls,
        token_rotation_pending: n.pending_token.is_some(),
    })
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
