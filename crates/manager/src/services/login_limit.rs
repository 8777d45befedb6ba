//! Sign-in limits that slow guessing without locking the real administrator out.
//!
//! - **Per account**: after [`FREE_FAILURES`] consecutive failures the account waits
//!   [`FIRST_BACKOFF_MS`], doubling with every further failure up to [`MAX_BACKOFF_MS`]; attempts
//!   while waiting are refused unverified and do not extend the wait. A success resets it. An
//!   address that signed in to the account before is exempt from the account's wait, so an
//!   attacker spraying one account from many addresses cannot keep its owner out.
//! - **Per source address** (IPv6 by /64): [`ADDRESS_FAILURES`] failures within
//!   [`ADDRESS_WINDOW_MS`] refuse that address for any account, so one noisy address cannot slow
//!   the accounts of everyone else. Behind a reverse proxy the address is only meaningful with
//!   `--trusted-proxy` (see `client_addr`).
//!
//! State is in memory and bounded; a restart forgets it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

/// Consecutive failures of one account before it has to wait.
pub const FREE_FAILURES: u32 = 5;
/// First wait of an account, doubled per further failure.
pub const FIRST_BACKOFF_MS: i64 = 1_000;
/// Longest wait of an account.
pub const MAX_BACKOFF_MS: i64 = 15 * 60 * 1_000;
/// Failures allowed per source address within [`ADDRESS_WINDOW_MS`].
pub const ADDRESS_FAILURES: usize = 20;
pub const ADDRESS_WINDOW_MS: i64 = 5 * 60 * 1_000;
/// Entries kept per map before the stale ones are dropped.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Default, Clone, Copy)]
struct Account {
    failures: u32,
    last_failure: i64,
}

impl Account {
    fn wait_until(&self) -> i64 {
        if self.failures < FREE_FAILURES {
            return i64::MIN;
        }
        let doublings = (self.failures - FREE_FAILURES).min(20);
        let wait = (FIRST_BACKOFF_MS << doublings).min(MAX_BACKOFF_MS);
        self.last_failure.saturating_add(wait)
    }
}

/// The limiter's state; the caller holds it behind a mutex.
#[derive(Debug, Default)]
pub struct LoginLimits {
    accounts: HashMap<String, Account>,
    addresses: HashMap<IpAddr, VecDeque<i64>>,
    /// (account, address) pairs that signed in successfully.
    known: HashSet<(String, IpAddr)>,
}

/// The key of a source address: IPv4 as is, IPv6 by its /64 (one host usually holds a /64).
fn address_key(ip: IpAddr) -> IpAddr {
    match crate::client_addr::canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

impl LoginLimits {
    /// Whether an attempt on `account` from `ip` may be verified now.
    pub fn allowed(&mut self, account: &str, ip: Option<IpAddr>, now: i64) -> bool {
        if let Some(ip) = ip.map(address_key) {
            if let Some(times) = self.addresses.get_mut(&ip) {
                while times.front().is_some_and(|t| now - t >= ADDRESS_WINDOW_MS) {
                    times.pop_front();
                }
                if times.len() >= ADDRESS_FAILURES {
                    return false;
                }
            }
            if self.known.contains(&(account.to_owned(), ip)) {
                return true;
            }
        }
        self.accounts
            .get(account)
            .is_none_or(|a| now >= a.wait_until())
    }

    /// Records a failed attempt.
    pub fn failed(&mut self, account: &str, ip: Option<IpAddr>, now: i64) {
        self.prune(now);
        let a = self.accounts.entry(account.to_owned()).or_default();
        a.failures = a.failures.saturating_add(1);
        a.last_failure = now;
        if let Some(ip) = ip.map(address_key) {
            self.addresses.entry(ip).or_default().push_back(now);
        }
    }

    /// Records a success: the account's failures are forgotten and the address is known for it.
    pub fn succeeded(&mut self, account: &str, ip: Option<IpAddr>) {
        self.accounts.remove(account);
        if let Some(ip) = ip.map(address_key) {
            if self.known.len() >= MAX_ENTRIES {
                self.known.clear();
            }
            self.known.insert((account.to_owned(), ip));
        }
    }

    /// Keeps the maps bounded under a spray of names or addresses.
    fn prune(&mut self, now: i64) {
        if self.accounts.len() >= MAX_ENTRIES {
            self.accounts
                .retain(|_, a| now < a.wait_until() || now - a.last_failure < ADDRESS_WINDOW_MS);
            if self.accounts.len() >= MAX_ENTRIES {
                self.accounts.retain(|_, a| now < a.wait_until());
            }
        }
        if self.addresses.len() >= MAX_ENTRIES {
            self.addresses
                .retain(|_, t| t.back().is_some_and(|t| now - t < ADDRESS_WINDOW_MS));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn account_backoff_doubles_up_to_the_cap() {
        let mut l = LoginLimits::default();
        for i in 0..FREE_FAILURES {
            assert!(l.allowed("root", ip("192.0.2.1"), 0), "attempt {i}");
            l.failed("root", ip(&format!("192.0.2.{i}")), 0);
        }
        assert!(!l.allowed("root", ip("198.51.100.1"), 999));
        assert!(l.allowed("root", ip("198.51.100.1"), 1_000));
        l.failed("root", ip("198.51.100.1"), 1_000);
        assert!(!l.allowed("root", None, 2_999));
        assert!(l.allowed("root", None, 3_000));
        for _ in 0..30 {
            l.failed("root", None, 3_000);
        }
        assert!(!l.allowed("root", None, 3_000 + MAX_BACKOFF_MS - 1));
        assert!(l.allowed("root", None, 3_000 + MAX_BACKOFF_MS));
        l.succeeded("root", None);
        assert!(l.allowed("root", None, 3_000));
    }

    #[test]
    fn ipv6_addresses_share_their_64() {
        let mut l = LoginLimits::default();
        for i in 0..ADDRESS_FAILURES {
            l.failed(&format!("user{i}"), ip(&format!("2001:db8::{i:x}")), 0);
        }
        assert!(!l.allowed("other", ip("2001:db8::ffff"), 1));
        assert!(l.allowed("other", ip("2001:db8:0:1::1"), 1));
        assert!(l.allowed("other", ip("2001:db8::ffff"), ADDRESS_WINDOW_MS));
    }
}
