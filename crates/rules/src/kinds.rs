//! The small vocabularies Arch stores and sends as lowercase strings: the four modes and why a
//! user is disabled. The serde form (REST JSON, links) and the database value (with the `sea-orm`
//! feature) are the same string, [`Mode::as_str`] / [`DisableReason::as_str`].

#[cfg(feature = "sea-orm")]
use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a user's traffic reaches the internet (names as in the spec; one port setting each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The manager's own data plane sends it out (`ss_direct_port`).
    Direct,
    /// The manager forwards it to a healthy node (`ss_relay_port`).
    Relay,
    /// The manager hands it to a node through the node's reverse tunnel (`ss_reverse_port`).
    Reverse,
    /// The user connects to a node directly (`ss_remote_port`).
    Remote,
}

impl Mode {
    /// Every mode, in the order the panel and the links list them.
    pub const ALL: [Mode; 4] = [Mode::Direct, Mode::Relay, Mode::Reverse, Mode::Remote];

    /// The wire name, which is also the tag of the mode's user inbound.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Relay => "relay",
            Mode::Reverse => "reverse",
            Mode::Remote => "remote",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a user is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "sea-orm",
    derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(StringLen::None)")
)]
#[serde(rename_all = "lowercase")]
pub enum DisableReason {
    /// An administrator disabled the user.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "manual"))]
    Manual,
    /// The user's usage reached the quota.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "quota"))]
    Quota,
    /// The user's access expired (`expire_at` passed).
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "expired"))]
    Expired,
}

impl DisableReason {
    /// Every reason.
    pub const ALL: [DisableReason; 3] = [
        DisableReason::Manual,
        DisableReason::Quota,
        DisableReason::Expired,
    ];

    /// The wire and database value.
    pub fn as_str(self) -> &'static str {
        match self {
            DisableReason::Manual => "manual",
            DisableReason::Quota => "quota",
            DisableReason::Expired => "expired",
        }
    }
}

impl DisableReason {
    /// Whether the manager set it (a limit was reached) rather than an administrator: only
    /// these are lifted when the limit no longer holds.
    pub fn is_automatic(self) -> bool {
        self != DisableReason::Manual
    }

    /// The limit a user has reached at `now` (ms), if any: expiry first, then the quota
    /// (`quota_bytes` 0 = unlimited). The one rule the accounting, the expiry check and user
    /// edits decide by.
    pub fn limit_reached(
        usage_bytes: i64,
        quota_bytes: i64,
        expire_at: Option<i64>,
        now: i64,
    ) -> Option<DisableReason> {
        if expire_at.is_some_and(|at| at <= now) {
            Some(DisableReason::Expired)
        } else if quota_bytes > 0 && usage_bytes >= quota_bytes {
            Some(DisableReason::Quota)
        } else {
            None
        }
    }
}

/// When a user's usage is zeroed on its own (at midnight in the settings' time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(
    feature = "sea-orm",
    derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(StringLen::None)")
)]
#[serde(rename_all = "snake_case")]
pub enum ResetStrategy {
    /// Never: only an administrator resets the usage.
    #[default]
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "none"))]
    None,
    /// Every midnight.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "daily"))]
    Daily,
    /// Every Monday at midnight.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "weekly"))]
    Weekly,
    /// At midnight starting the user's `reset_day` of every month (the month's last day when it
    /// is shorter).
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "monthly"))]
    Monthly,
    /// At midnight 30 days after the date of the last reset.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "every_30_days"))]
    #[serde(rename = "every_30_days")]
    Every30Days,
    /// Every 1 January at midnight.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "yearly"))]
    Yearly,
}

impl ResetStrategy {
    /// Every strategy, in the order the panel lists them.
    pub const ALL: [ResetStrategy; 6] = [
        ResetStrategy::None,
        ResetStrategy::Daily,
        ResetStrategy::Weekly,
        ResetStrategy::Monthly,
        ResetStrategy::Every30Days,
        ResetStrategy::Yearly,
    ];

    /// The wire and database value.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetStrategy::None => "none",
            ResetStrategy::Daily => "daily",
            ResetStrategy::Weekly => "weekly",
            ResetStrategy::Monthly => "monthly",
            ResetStrategy::Every30Days => "every_30_days",
            ResetStrategy::Yearly => "yearly",
        }
    }

    /// The strategy named `value` (its wire value).
    pub fn parse(value: &str) -> Option<ResetStrategy> {
        ResetStrategy::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// How the panel names it.
    pub fn label(self) -> &'static str {
        match self {
            ResetStrategy::None => "Never",
            ResetStrategy::Daily => "Daily",
            ResetStrategy::Weekly => "Weekly (Monday)",
            ResetStrategy::Monthly => "Monthly (on a day of the month)",
            ResetStrategy::Every30Days => "Every 30 days",
            ResetStrategy::Yearly => "Yearly (1 January)",
        }
    }
}

impl fmt::Display for ResetStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an administrator or API token may do. Every change goes through the manager's
/// services, which check the caller's role there (one home for the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "sea-orm",
    derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(StringLen::None)")
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: settings, administrators and API tokens too.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "owner"))]
    Owner,
    /// Users and nodes.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "operator"))]
    Operator,
    /// Read only.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "viewer"))]
    Viewer,
}

/// The kinds of change a [`Role`] is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Users and nodes: create, edit, delete, reset, restart, re-pin, rotate.
    Operate,
    /// Settings, administrators and API tokens.
    Administer,
}

impl Role {
    /// Every role, the most powerful first.
    pub const ALL: [Role; 3] = [Role::Owner, Role::Operator, Role::Viewer];

    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// The role named `value` (its wire name).
    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// Whether this role may make changes of kind `permission`. Reading is open to every role.
    pub fn allows(self, permission: Permission) -> bool {
        match (self, permission) {
            (Role::Owner, _) => true,
            (Role::Operator, Permission::Operate) => true,
            (Role::Operator, Permission::Administer) | (Role::Viewer, _) => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DisableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_serde_form() {
        let modes: Vec<String> = Mode::ALL.iter().map(|m| m.to_string()).collect();
        assert_eq!(modes, ["direct", "relay", "reverse", "remote"]);
        for m in Mode::ALL {
            let json = serde_json::to_string(&m).expect("serialize");
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(serde_json::from_str::<Mode>(&json).ok(), Some(m));
        }
        let reasons: Vec<&str> = DisableReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(reasons, ["manual", "quota", "expired"]);
        for r in DisableReason::ALL {
            let json = serde_json::to_string(&r).expect("serialize");
            assert_eq!(json, format!("\"{r}\""));
            assert_eq!(serde_json::from_str::<DisableReason>(&json).ok(), Some(r));
        }
        assert!(serde_json::from_str::<Mode>("\"Direct\"").is_err());
        for r in ResetStrategy::ALL {
            let json = serde_json::to_string(&r).expect("serialize");
            assert_eq!(json, format!("\"{r}\""));
            assert_eq!(serde_json::from_str::<ResetStrategy>(&json).ok(), Some(r));
            assert_eq!(ResetStrategy::parse(r.as_str()), Some(r));
        }
        assert_eq!(ResetStrategy::parse("monthly "), None);
    }

    #[test]
    fn roles_allow_what_the_panel_promises() {
        use super::{Permission, Role};
        assert!(Role::Owner.allows(Permission::Administer));
        assert!(Role::Owner.allows(Permission::Operate));
        assert!(Role::Operator.allows(Permission::Operate));
        assert!(!Role::Operator.allows(Permission::Administer));
        assert!(!Role::Viewer.allows(Permission::Operate));
        assert!(!Role::Viewer.allows(Permission::Administer));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(
                serde_json::to_string(&role).expect("json"),
                format!("\"{role}\"")
            );
        }
        assert_eq!(Role::parse("Owner"), None);
    }

    #[test]
    fn limits_expiry_first_then_quota() {
        use DisableReason::{Expired, Quota};
        let now = 1_000_000;
        // (usage, quota, expire_at) → reached
        let table: [(i64, i64, Option<i64>, Option<DisableReason>); 8] = [
            (0, 0, None, None),
            (10, 0, None, None),
            (9, 10, None, None),
            (10, 10, None, Some(Quota)),
            (11, 10, Some(now + 1), Some(Quota)),
            (0, 0, Some(now), Some(Expired)),
            (0, 0, Some(now + 1), None),
            (11, 10, Some(now - 1), Some(Expired)),
        ];
        for (usage, quota, expire_at, want) in table {
            assert_eq!(
                DisableReason::limit_reached(usage, quota, expire_at, now),
                want,
                "{usage}/{quota} expiring {expire_at:?}"
            );
        }
        assert!(!DisableReason::Manual.is_automatic());
        assert!(Quota.is_automatic() && Expired.is_automatic());
    }
}
