//! Traffic counters with Xray's names (`user>>>{email}>>>traffic>>>uplink`, …).
//!
//! The registry owns one atomic per name; handles ([`Traffic`], [`Meter`]) are cheap clones that
//! connections bump directly. Counters are cumulative from `Engine::new` and never reset, so a
//! caller can compute deltas itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// One named counter.
pub(crate) type Counter = Arc<AtomicU64>;

/// All counters of one engine, by Xray name.
#[derive(Default)]
pub(crate) struct Stats {
    map: Mutex<BTreeMap<String, Counter>>,
}

impl Stats {
    /// The counter called `name`, created at zero on first use.
    pub(crate) fn counter(&self, name: String) -> Counter {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(name).or_default().clone()
    }

    /// The uplink/downlink pair of `kind` (`user`, `inbound`, `outbound`) named `tag`.
    pub(crate) fn traffic(&self, kind: &str, tag: &str) -> Traffic {
        Traffic {
            up: self.counter(format!("{kind}>>>{tag}>>>traffic>>>uplink")),
            down: self.counter(format!("{kind}>>>{tag}>>>traffic>>>downlink")),
        }
    }

    /// A copy of every counter's current value.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// The uplink and downlink counters of one user, inbound or outbound.
#[derive(Clone, Debug)]
pub(crate) struct Traffic {
    pub(crate) up: Counter,
    pub(crate) down: Counter,
}

/// The set of counters one connection bumps together (user + inbound + outbound).
#[derive(Clone, Debug, Default)]
pub(crate) struct Meter {
    up: Vec<Counter>,
    down: Vec<Counter>,
}

impl Meter {
    /// Adds a pair to the set.
    pub(crate) fn with(mut self, t: &Traffic) -> Meter {
        self.up.push(t.up.clone());
        self.down.push(t.down.clone());
        self
    }

    /// Counts `n` client→target payload bytes.
    pub(crate) fn up(&self, n: usize) {
        for c in &self.up {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Counts `n` target→client payload bytes.
    pub(crate) fn down(&self, n: usize) {
        for c in &self.down {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_bumps_every_counter_in_the_set() {
        let stats = Stats::default();
        let user = stats.traffic("user", "7");
        let inbound = stats.traffic("inbound", "direct");
        let meter = Meter::default().with(&user).with(&inbound);
        meter.up(86);
        meter.down(1_000_103);
        meter.down(1);
        let snap = stats.snapshot();
        assert_eq!(snap["user>>>7>>>traffic>>>uplink"], 86);
        assert_eq!(snap["user>>>7>>>traffic>>>downlink"], 1_000_104);
        assert_eq!(snap["inbound>>>direct>>>traffic>>>uplink"], 86);
        assert_eq!(snap["inbound>>>direct>>>traffic>>>downlink"], 1_000_104);
        assert_eq!(snap.len(), 4);
    }

    #[test]
    fn same_name_is_the_same_counter() {
        let stats = Stats::default();
        let a = stats.traffic("outbound", "out");
        let b = stats.traffic("outbound", "out");
        a.up.fetch_add(5, Ordering::Relaxed);
        assert_eq!(b.up.load(Ordering::Relaxed), 5);
    }
}
