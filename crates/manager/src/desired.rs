//! The desired config version of every node, kept in memory: the version of the config the
//! manager would push to the node, as of the last sync pass (which runs right after every change,
//! debounced, and every 10 s) or the node's last manual restart.
//!
//! The coordinator writes it: each sync pass builds every node's config from one snapshot anyway
//! and replaces the whole map (a node added since gets its entry there; the pass follows the
//! change signal at once), a restart sets its node's version. `NodeService::delete` drops the
//! node's entry. Readers (`NodeService::get` / `list`, every node event) only look it up, so
//! showing drift costs no snapshot of users and nodes.

use crate::entity::node;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The desired version per node id, shared by the coordinator and the services. Cheap to clone.
#[derive(Clone, Default)]
pub struct DesiredVersions(Arc<RwLock<HashMap<i64, String>>>);

impl DesiredVersions {
    /// The desired version of node `id`, `None` before the first sync pass that saw the node.
    pub fn get(&self, id: i64) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// `n` with its `desired_version` filled in from the map.
    pub fn fill(&self, mut n: node::Model) -> node::Model {
        n.desired_version = self.get(n.id);
        n
    }

    /// Every node's version as a sync pass computed it: replaces the map, and returns the ids
    /// whose version moved (a new node's included).
    pub(crate) fn replace(&self, versions: HashMap<i64, String>) -> Vec<i64> {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        let moved = versions
            .iter()
            .filter(|(id, v)| map.get(*id) != Some(*v))
            .map(|(id, _)| *id)
            .collect();
        *map = versions;
        moved
    }

    /// Node `id`'s version as a restart computed it.
    pub(crate) fn set(&self, id: i64, version: String) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, version);
    }

    /// Forgets a deleted node.
    pub(crate) fn forget(&self, id: i64) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_replaces_every_entry_and_names_those_that_moved() {
        let d = DesiredVersions::default();
        assert_eq!(d.get(1), None);
        let mut moved = d.replace(HashMap::from([(1, "a".into()), (2, "b".into())]));
        moved.sort_unstable();
        assert_eq!(moved, [1, 2], "new entries moved");
        let moved = d.replace(HashMap::from([(1, "a".into()), (2, "c".into())]));
        assert_eq!(moved, [2]);
        assert_eq!(d.get(2).as_deref(), Some("c"));
        // A node gone from the pass is gone from the map.
        assert!(d.replace(HashMap::from([(1, "a".into())])).is_empty());
        assert_eq!(d.get(2), None);
        d.set(1, "z".into());
        assert_eq!(
            d.clone().get(1).as_deref(),
            Some("z"),
            "clones share the map"
        );
        d.forget(1);
        assert_eq!(d.get(1), None);
    }
}
