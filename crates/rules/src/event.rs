//! The live events of the manager's `/events` stream, as the manager sends them and the panel
//! reads them. Each Server-Sent Event is `event: <name>` (see [`Event::name`]) with the JSON of
//! the event as `data` (`{"type": <name>, …}`); a subscriber that fell behind gets
//! `event: resync` ([`RESYNC`]) and should reload everything.

use serde::{Deserialize, Serialize};

/// The SSE event name telling a subscriber that it missed events.
pub const RESYNC: &str = "resync";

/// Something that changed and that a live view may want to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A node's health, times, usage, applied or desired version changed.
    Node(NodeLive),
    /// A node was deleted.
    NodeRemoved { id: i64 },
    /// Nodes were added or edited: reload the list.
    NodesChanged,
    /// Users were added, edited or deleted: reload the list.
    UsersChanged,
    /// A user's usage or enabled state changed through accounting or quotas.
    UserUsage(UserLive),
    /// Settings changed.
    SettingsChanged,
}

/// The live part of a node, carried by [`Event::Node`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLive {
    pub id: i64,
    /// `""` (processing), `available`, `dirty` or `unavailable`.
    pub push_status: String,
    /// `""` (processing), `available` or `unavailable`.
    pub pull_status: String,
    /// Unix ms of the last successful push, 0 = never.
    pub pushed_at: i64,
    /// Unix ms of the last successful pull, 0 = never.
    pub pulled_at: i64,
    pub usage_bytes: i64,
    /// The config version the node last reported running (`None` before its first push).
    #[serde(default)]
    pub applied_version: Option<String>,
    /// The config version the manager would push to the node, as of the manager's last sync
    /// pass (which runs right after every change, debounced, and every 10 s) or the node's last
    /// manual restart; `None` until the first pass after the node was added. Differs from
    /// `applied_version` while the node does not run its current config (drift). Absent from
    /// older managers' events, read as `None`.
    #[serde(default)]
    pub desired_version: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The pinned certificate fingerprint (64 hex digits), once pinned.
    #[serde(default)]
    pub tls_fingerprint: Option<String>,
    /// A different certificate the node presented (its calls are refused until re-pinned).
    #[serde(default)]
    pub presented_fingerprint: Option<String>,
    /// The node's refused calls since it started, as of the last pull.
    #[serde(default)]
    pub refused_calls: i64,
    /// A token rotation is under way (never the token itself).
    #[serde(default)]
    pub token_rotation_pending: bool,
}

/// The live part of a user, carried by [`Event::UserUsage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLive {
    pub id: i64,
    pub usage_bytes: i64,
    pub enabled: bool,
}

impl Event {
    /// The SSE event name of every variant, in declaration order.
    pub const NAMES: [&'static str; 6] = [
        "node",
        "node_removed",
        "nodes_changed",
        "users_changed",
        "user_usage",
        "settings_changed",
    ];

    /// The SSE event name: the `type` tag of the JSON form.
    pub fn name(&self) -> &'static str {
        Self::NAMES[self.index()]
    }

    /// The SSE `data` of the event: its JSON form.
    pub fn data(&self) -> String {
        // A plain enum of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The variant's position in [`Event::NAMES`].
    fn index(&self) -> usize {
        match self {
            Event::Node(_) => 0,
            Event::NodeRemoved { .. } => 1,
            Event::NodesChanged => 2,
            Event::UsersChanged => 3,
            Event::UserUsage(_) => 4,
            Event::SettingsChanged => 5,
        }
    }

    /// One event of every variant, in the order of [`Event::NAMES`]: what tests of the encoders
    /// and decoders run through.
    pub fn examples() -> Vec<Event> {
        let examples = vec![
            Event::Node(NodeLive {
                id: 3,
                push_status: "available".into(),
                pull_status: "unavailable".into(),
                pushed_at: 5,
                pulled_at: 6,
                usage_bytes: 7,
                applied_version: Some("v1".into()),
                desired_version: Some("v2".into()),
                last_error: None,
                tls_fingerprint: Some("ab".repeat(32)),
                presented_fingerprint: None,
                refused_calls: 2,
                token_rotation_pending: false,
            }),
            Event::NodeRemoved { id: 3 },
            Event::NodesChanged,
            Event::UsersChanged,
            Event::UserUsage(UserLive {
                id: 4,
                usage_bytes: 9,
                enabled: false,
            }),
            Event::SettingsChanged,
        ];
        debug_assert!(examples.iter().enumerate().all(|(i, e)| e.index() == i));
        examples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_type_tags_of_every_variant() {
        let examples = Event::examples();
        let names: Vec<&str> = examples.iter().map(Event::name).collect();
        assert_eq!(names, Event::NAMES);
        for ev in &examples {
            let json: serde_json::Value = serde_json::from_str(&ev.data()).expect("json");
            assert_eq!(json["type"], ev.name());
            let back: Event = serde_json::from_value(json).expect("deserialize");
            assert_eq!(&back, ev);
        }
        assert!(!Event::NAMES.contains(&RESYNC));
    }

    #[test]
    fn wire_form_is_flat() {
        assert_eq!(
            serde_json::to_string(&Event::examples()[0]).expect("serialize"),
            r#"{"type":"node","id":3,"push_status":"available","pull_status":"unavailable","pushed_at":5,"pulled_at":6,"usage_bytes":7,"applied_version":"v1","desired_version":"v2","last_error":null,"tls_fingerprint":"abababababababababababababababababababababababababababababababab","presented_fingerprint":null,"refused_calls":2,"token_rotation_pending":false}"#
        );
        assert_eq!(
            serde_json::to_string(&Event::UserUsage(UserLive {
                id: 4,
                usage_bytes: 9,
                enabled: true
            }))
            .expect("serialize"),
            r#"{"type":"user_usage","id":4,"usage_bytes":9,"enabled":true}"#
        );
        assert!(serde_json::from_str::<Event>(r#"{"type":"audit"}"#).is_err());
    }

    #[test]
    fn a_node_event_without_the_desired_version_still_parses() {
        // As an older manager sends it.
        let old = r#"{"type":"node","id":3,"push_status":"","pull_status":"","pushed_at":0,"pulled_at":0,"usage_bytes":0,"applied_version":"v1"}"#;
        let Ok(Event::Node(live)) = serde_json::from_str::<Event>(old) else {
            panic!("a node event: {old}");
        };
        assert_eq!(live.applied_version.as_deref(), Some("v1"));
        assert_eq!(live.desired_version, None);
    }
}
