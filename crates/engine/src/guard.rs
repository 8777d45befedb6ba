//! Defences of the inbound side that outlive a single connection: the classic-AEAD salt replay
//! filter, the per-client-IP hint of which user connected last, and the per-IP budget for failed
//! identifications (so probes that match no user cannot make us try 10 000 keys at line rate).
//!
//! Every table is bounded; when one is full it is pruned (or cleared) rather than grown.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The salts seen, and (seconds since the Unix epoch, salt) in order of arrival for eviction.
type SaltSet = (HashSet<Vec<u8>>, VecDeque<(u64, Vec<u8>)>);

/// How long a salt is remembered across restarts: a recorded connection replayed within this
/// window after it was made is refused even if the process restarted in between.
pub(crate) const SALT_WINDOW_SECS: u64 = 7 * 24 * 3600;

/// Leading bytes of the persisted form ([`SaltFilter::export`]).
const SALT_FILE_MAGIC: &[u8; 8] = b"ARCHSLT1";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Remembers the salts of authenticated classic-AEAD connections; a repeat is a replay.
pub(crate) struct SaltFilter {
    inner: Mutex<SaltSet>,
    capacity: usize,
    /// Bumped on every new salt, so a caller can tell whether to persist again.
    generation: AtomicU64,
}

impl SaltFilter {
    pub(crate) fn new(capacity: usize) -> Self {
        SaltFilter {
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
            capacity: capacity.max(1),
            generation: AtomicU64::new(0),
        }
    }

    /// Records `salt`; returns false when it was already seen (a replay).
    pub(crate) fn insert(&self, salt: &[u8]) -> bool {
        self.insert_at(salt, unix_now())
    }

    fn insert_at(&self, salt: &[u8], seen: u64) -> bool {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *guard;
        if set.contains(salt) {
            return false;
        }
        if order.len() >= self.capacity {
            if let Some((_, old)) = order.pop_front() {
                set.remove(&old);
            }
        }
        set.insert(salt.to_vec());
        order.push_back((seen, salt.to_vec()));
        self.generation.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Changes whenever a salt is added.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The salts seen within [`SALT_WINDOW_SECS`], oldest first, in a compact binary form:
    /// a magic, then per salt its time (u64, big endian), its length (u8) and its bytes.
    pub(crate) fn export(&self) -> Vec<u8> {
        let since = unix_now().saturating_sub(SALT_WINDOW_SECS);
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::with_capacity(8 + guard.1.len() * 41);
        out.extend_from_slice(SALT_FILE_MAGIC);
        for (seen, salt) in guard.1.iter().filter(|(t, _)| *t >= since) {
            let Ok(len) = u8::try_from(salt.len()) else {
                continue;
            };
            out.extend_from_slice(&seen.to_be_bytes());
            out.push(len);
            out.extend_from_slice(salt);
        }
        out
    }

    /// Adds the salts of an [`export`](Self::export) (those still inside the window). Returns
    /// how many were added; a damaged tail is ignored, a wrong magic adds nothing.
    pub(crate) fn import(&self, bytes: &[u8]) -> usize {
        let Some(mut rest) = bytes.strip_prefix(SALT_FILE_MAGIC.as_slice()) else {
            return 0;
        };
        let since = unix_now().saturating_sub(SALT_WINDOW_SECS);
        let mut added = 0;
        while rest.len() >= 9 {
            let mut seen = [0u8; 8];
            seen.copy_from_slice(&rest[..8]);
            let seen = u64::from_be_bytes(seen);
            let len = usize::from(rest[8]);
            let Some(salt) = rest.get(9..9 + len) else {
                break;
            };
            if seen >= since && self.insert_at(salt, seen) {
                added += 1;
            }
            rest = &rest[9 + len..];
        }
        added
    }
}

/// (inbound tag, client IP).
type HintKey = (Arc<str>, IpAddr);

/// Which user a client IP authenticated as last, per inbound, so a returning client costs one key
/// trial instead of a scan.
pub(crate) struct HintCache {
    map: Mutex<HashMap<HintKey, Arc<str>>>,
    capacity: usize,
}

impl HintCache {
    pub(crate) fn new(capacity: usize) -> Self {
        HintCache {
            map: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn get(&self, inbound: &Arc<str>, ip: IpAddr) -> Option<Arc<str>> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&(inbound.clone(), ip)).cloned()
    }

    pub(crate) fn set(&self, inbound: &Arc<str>, ip: IpAddr, email: Arc<str>) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity && !map.contains_key(&(inbound.clone(), ip)) {
            map.clear();
        }
        map.insert((inbound.clone(), ip), email);
    }
}

/// A token bucket per source IP, spent by failed identifications.
///
/// An IP with an empty bucket gets no full key scan: only its hinted user is tried, so a
/// returning legitimate client still gets in while a prober is starved.
pub(crate) struct ProbeLimiter {
    map: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    burst: f64,
    per_sec: f64,
    capacity: usize,
}

impl ProbeLimiter {
    pub(crate) fn new(burst: u32, per_sec: f64, capacity: usize) -> Self {
        ProbeLimiter {
            map: Mutex::new(HashMap::new()),
            burst: f64::from(burst),
            per_sec,
            capacity: capacity.max(1),
        }
    }

    fn level(&self, entry: (f64, Instant), now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(entry.1).as_secs_f64();
        (entry.0 + elapsed * self.per_sec).min(self.burst)
    }

    /// May `ip` have a full identification attempt now?
    pub(crate) fn allowed(&self, ip: IpAddr) -> bool {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(&ip) {
            None => true,
            Some(&e) => self.level(e, Instant::now()) >= 1.0,
        }
    }

    /// Spends one token of `ip` for a failed identification.
    pub(crate) fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity && !map.contains_key(&ip) {
            map.retain(|_, e| self.level(*e, now) < self.burst);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        let current = map.get(&ip).map_or(self.burst, |&e| self.level(e, now));
        map.insert(ip, ((current - 1.0).max(0.0), now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salt_filter_rejects_repeats_and_forgets_the_oldest() {
        let f = SaltFilter::new(2);
        assert!(f.insert(b"a"));
        assert!(!f.insert(b"a"));
        assert!(f.insert(b"b"));
        assert!(f.insert(b"c"));
        assert!(f.insert(b"a"), "a was evicted by c");
        assert!(!f.insert(b"c"));
    }

    #[test]
    fn salts_survive_an_export_and_import_within_the_window() {
        let f = SaltFilter::new(8);
        assert!(f.insert(b"salt-one"));
        assert!(f.insert_at(b"too-old", unix_now() - SALT_WINDOW_SECS - 10));
        let g = f.generation();
        let saved = f.export();
        let restored = SaltFilter::new(8);
        assert_eq!(restored.import(&saved), 1);
        assert!(!restored.insert(b"salt-one"), "a replay after a restart");
        assert!(restored.insert(b"too-old"), "outside the window");
        assert_eq!(f.generation(), g);
        // Damage: a wrong magic adds nothing; a cut tail keeps what is whole.
        assert_eq!(SaltFilter::new(8).import(b"NOTSALTS"), 0);
        let cut = &saved[..saved.len() - 1];
        assert_eq!(SaltFilter::new(8).import(cut), 0);
    }

    #[test]
    fn limiter_blocks_after_burst() {
        let l = ProbeLimiter::new(3, 0.0, 10);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..3 {
            assert!(l.allowed(ip));
            l.failed(ip);
        }
        assert!(!l.allowed(ip));
        assert!(l.allowed(other));
    }

    #[test]
    fn hints_are_per_inbound() {
        let h = HintCache::new(4);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        h.set(&a, ip, "alice".into());
        assert_eq!(h.get(&a, ip).as_deref(), Some("alice"));
        assert_eq!(h.get(&b, ip), None);
    }
}
