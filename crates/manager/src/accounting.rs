//! Exactly-once traffic accounting. Nodes report cumulative counters per epoch; for every
//! (node, epoch, counter) we store the last value applied, in the same transaction as the usage it
//! added. A lost reply, a retried pull or a manager restart therefore adds nothing twice; a new
//! epoch (node crash, wiped data dir) starts from zero and adds nothing twice either.
//!
//! A user is credited a node's bytes times the node's usage multiplier (exactly, see [`counted`]);
//! the node's own total is what it carried. The usage history (`crate::history`) is written in the
//! same transaction as the totals.
//!
//! A node's counters are untrusted input (a stolen or buggy node must not disable other users or
//! corrupt usage). For a node, only counters named in its [`Expected`] set are accepted: the users
//! and the inbound / outbound tags of the config the writer generated for it. Every delta is
//! bounded by what the node could physically have carried since its last accepted pull
//! ([`MAX_RATE_BYTES_PER_MS`] × elapsed + [`DELTA_ALLOWANCE`]); values beyond `i64`, counters
//! going backwards and sums that would overflow are refused, never wrapped. A refused counter adds
//! nothing; its cursor moves to the reported value when that value is representable, so the next
//! honest report counts again from there (the baseline moves, nothing is ever added twice). Each
//! pull logs one warning with the node id and how many counters were ignored or refused.

use crate::entity::node::{self, NodeStatus};
use crate::entity::{stats_cursor, user};
use crate::services::settings;
use crate::{history, util, Result};
use rules::DisableReason;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set};
use std::collections::{BTreeMap, HashMap, HashSet};
use xray::api::Stat;

/// Node id under which the manager's own engine is accounted.
pub const LOCAL_NODE: i64 = 0;

/// Fastest rate a node is believed to carry per counter: 10 Gbit/s, in bytes per millisecond.
pub const MAX_RATE_BYTES_PER_MS: i64 = 1_250_000;
/// Added to every bound, for clock granularity and the first pull of a node: 1 GiB.
pub const DELTA_ALLOWANCE: i64 = 1 << 30;

/// A usage multiplier of 1.0, in thousandths.
pub const UNIT_PERMILLE: i32 = 1000;

/// What a node's cumulative counter `value` counts for a user at `permille` thousandths: rounded
/// down, so that within an epoch the user is credited `counted(last) - counted(first)` in all,
/// whatever the pulls in between (no rounding error adds up). A node's own total is never
/// multiplied.
fn counted(value: i64, permille: i32) -> i64 {
    let scaled =
        i128::from(value) * i128::from(std::cmp::max(permille, 0)) / i128::from(UNIT_PERMILLE);
    i64::try_from(scaled).unwrap_or(i64::MAX)
}

/// What one pull changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Bytes added to the node's usage.
    pub node_bytes: i64,
    /// Bytes added per user id (the node's usage multiplier applied).
    pub user_bytes: BTreeMap<i64, i64>,
    /// Users disabled because they reached their quota.
    pub disabled: Vec<i64>,
    /// Counters ignored: not named in the node's expected set, or unparsable.
    pub ignored: usize,
    /// Counters refused: a value beyond `i64`, a delta beyond the bound, a counter going
    /// backwards, or a sum that would overflow.
    pub refused: usize,
}

/// Which counters a source may report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The manager's own engine: in-process, trusted, unbounded.
    Local,
    /// A node: only these users and tags, with bounded deltas.
    Node {
        users: HashSet<i64>,
        inbounds: HashSet<String>,
        outbounds: HashSet<String>,
    },
}

impl Expected {
    /// What a node running `config` can count: the users of its inbounds, its inbound and
    /// reverse-bridge tags (a bridge counts as the inbound of the streams it carries), and its
    /// outbound and portal tags.
    pub fn from_config(config: &xray::Config) -> Expected {
        let users = config
            .inbounds
            .iter()
            .flat_map(|i| i.settings.clients.iter())
            .filter_map(|c| c.email.parse().ok())
            .collect();
        let inbounds = config
            .inbounds
            .iter()
            .map(|i| i.tag.clone())
            .chain(config.reverse.bridges.iter().map(|b| b.tag.clone()))
            .collect();
        let outbounds = config
            .outbounds
            .iter()
            .map(|o| o.tag.clone())
            .chain(config.reverse.portals.iter().map(|p| p.tag.clone()))
            .collect();
        Expected::Node {
            users,
            inbounds,
            outbounds,
        }
    }
}

/// What a counter name says it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    User(i64),
    Inbound,
    Outbound,
}

/// The `(kind, subject)` of a traffic counter's name,
/// `{kind}>>>{subject}>>>traffic>>>{uplink|downlink}` (`user>>>7>>>traffic>>>uplink` gives
/// `("user", "7")`); `None` for a name of any other shape (another counter, a part missing or
/// one too many). Neither part is checked here: [`accept`] decides whether the kind and subject
/// are known and allowed.
fn parse(name: &str) -> Option<(&str, &str)> {
    let mut parts = name.split(">>>");
    let kind = parts.next()?;
    let subject = parts.next()?;
    (parts.next()? == "traffic").then_some(())?;
    matches!(parts.next()?, "uplink" | "downlink").then_some(())?;
    parts.next().is_none().then_some((kind, subject))
}

/// `outbound>>>{tag}>>>refused>>>connections|datagrams`: what the engine's blackholes refused
/// (private destinations), reported with the counters but never accounted.
fn is_refusal_count(name: &str) -> bool {
    let parts: Vec<&str> = name.split(">>>").collect();
    matches!(
        parts.as_slice(),
        ["outbound", _, "refused", "connections" | "datagrams"]
    )
}

/// The subject of `name` if `expected` allows it.
fn accept(expected: &Expected, name: &str) -> Option<Subject> {
    let (kind, subject) = parse(name)?;
    let parsed = match kind {
        "user" => Subject::User(subject.parse().ok()?),
        "inbound" => Subject::Inbound,
        "outbound" => Subject::Outbound,
        _ => return None,
    };
    let allowed = match (expected, parsed) {
        (Expected::Local, _) => true,
        (Expected::Node { users, .. }, Subject::User(id)) => users.contains(&id),
        (Expected::Node { inbounds, .. }, Subject::Inbound) => inbounds.contains(subject),
        (Expected::Node { outbounds, .. }, Subject::Outbound) => outbounds.contains(subject),
    };
    allowed.then_some(parsed)
}

/// Largest delta a node may report now for one counter, given when its last pull was accepted.
fn max_delta(since_ms: i64, now_ms: i64) -> i64 {
    std::cmp::max(now_ms.saturating_sub(since_ms), 0)
        .saturating_mul(MAX_RATE_BYTES_PER_MS)
        .saturating_add(DELTA_ALLOWANCE)
}

/// Applies one pull of `node_id` (epoch `epoch`) exactly once, accepting only what `expected`
/// allows. For a real node it also records the successful pull (`pulled_at`, pull status
/// `available`) in the same transaction.
pub async fn apply(
    db: &DatabaseConnection,
    node_id: i64,
    epoch: &str,
    stats: &[Stat],
    expected: &Expected,
) -> Result<Applied> {
    let now = util::now_ms();
    let txn = crate::db::write_txn(db).await?;
    let (bound, permille) = match expected {
        Expected::Local => (i64::MAX, UNIT_PERMILLE),
        Expected::Node { .. } => {
            let row = node::Entity::find_by_id(node_id).one(&txn).await?;
            let since = row
                .as_ref()
                .map_or(now, |n| std::cmp::max(n.pulled_at, n.created_at));
            let permille = row.map_or(UNIT_PERMILLE, |n| n.usage_multiplier_permille);
            (max_delta(since, now), permille)
        }
    };
    let cursors = stats_cursor::Entity::find()
        .filter(stats_cursor::Column::NodeId.eq(node_id))
        .all(&txn)
        .await?;
    if cursors.iter().any(|c| c.epoch != epoch) {
        stats_cursor::Entity::delete_many()
            .filter(stats_cursor::Column::NodeId.eq(node_id))
            .filter(stats_cursor::Column::Epoch.ne(epoch))
            .exec(&txn)
            .await?;
    }
    let previous: HashMap<&str, i64> = cursors
        .iter()
        .filter(|c| c.epoch == epoch)
        .map(|c| (c.name.as_str(), c.value))
        .collect();

    let mut applied = Applied::default();
    let mut moved = Vec::new();
    let mut seen = HashSet::new();
    for stat in stats {
        if is_refusal_count(&stat.name) {
            continue; // the engine's refused connections / datagrams: not traffic
        }
        let Some(subject) = accept(expected, &stat.name) else {
            applied.ignored += 1;
            continue;
        };
        if !seen.insert(stat.name.as_str()) {
            applied.refused += 1; // the same counter twice in one reply
            continue;
        }
        let Ok(value) = i64::try_from(stat.value) else {
            applied.refused += 1;
            continue;
        };
        let prev = previous.get(stat.name.as_str()).copied().unwrap_or(0);
        if value == prev {
            continue;
        }
        moved.push(stats_cursor::ActiveModel {
            node_id: Set(node_id),
            epoch: Set(epoch.to_owned()),
            name: Set(stat.name.clone()),
            value: Set(value),
        });
        // value > prev >= 0 here, so the subtraction cannot overflow.
        let delta = match value.checked_sub(prev) {
            Some(d) if value > prev && d <= bound => d,
            _ => {
                applied.refused += 1;
                continue;
            }
        };
        let added = match subject {
            Subject::User(id) => {
                let sum = applied.user_bytes.get(&id).copied().unwrap_or(0);
                sum.checked_add(counted(value, permille) - counted(prev, permille))
                    .map(|s| applied.user_bytes.insert(id, s))
                    .is_some()
            }
            Subject::Inbound => applied
                .node_bytes
                .checked_add(delta)
                .map(|s| applied.node_bytes = s)
                .is_some(),
            Subject::Outbound => true,
        };
        if !added {
            applied.refused += 1;
        }
    }
    for chunk in moved.chunks(200) {
        stats_cursor::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    stats_cursor::Column::NodeId,
                    stats_cursor::Column::Epoch,
                    stats_cursor::Column::Name,
                ])
                .update_column(stats_cursor::Column::Value)
                .to_owned(),
            )
            .exec(&txn)
            .await?;
    }
    // Usage sums are checked against the stored values: an add that would overflow is refused.
    applied.user_bytes.retain(|_, b| *b > 0);
    let usage: HashMap<i64, i64> = if applied.user_bytes.is_empty() {
        HashMap::new()
    } else {
        user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::UsageBytes)
            .filter(user::Column::Id.is_in(applied.user_bytes.keys().copied()))
            .into_tuple::<(i64, i64)>()
            .all(&txn)
            .await?
            .into_iter()
            .collect()
    };
    let mut overflowed = Vec::new();
    for (&id, &bytes) in &applied.user_bytes {
        let Some(current) = usage.get(&id) else {
            continue; // deleted since the config was generated
        };
        if current.checked_add(bytes).is_none() {
            overflowed.push(id);
            continue;
        }
        user::Entity::update_many()
            .col_expr(
                user::Column::UsageBytes,
                Expr::col(user::Column::UsageBytes).add(bytes),
            )
            .filter(user::Column::Id.eq(id))
            .exec(&txn)
            .await?;
    }
    applied.refused += overflowed.len();
    for id in overflowed {
        applied.user_bytes.remove(&id);
    }
    applied.user_bytes.retain(|id, _| usage.contains_key(id));
    history::record(
        &txn,
        applied
            .user_bytes
            .iter()
            .map(|(&id, &bytes)| (history::Subject::User, id, bytes)),
        now,
    )
    .await?;
    // First use: a first-use clock starts (unless an expiry is set), and the time is kept.
    if !applied.user_bytes.is_empty() {
        let first = || {
            user::Entity::update_many()
                .filter(user::Column::Id.is_in(applied.user_bytes.keys().copied()))
                .filter(user::Column::FirstUsedAt.is_null())
        };
        first()
            .col_expr(
                user::Column::ExpireAt,
                Expr::value(now).add(Expr::col(user::Column::ExpireAfterFirstUse)),
            )
            .filter(user::Column::ExpireAt.is_null())
            .filter(user::Column::ExpireAfterFirstUse.is_not_null())
            .exec(&txn)
            .await?;
        first()
            .col_expr(user::Column::FirstUsedAt, Expr::value(now))
            .exec(&txn)
            .await?;
    }
    // Quotas: only users whose usage moved can newly cross theirs.
    if !applied.user_bytes.is_empty() {
        let over = user::Entity::find()
            .filter(user::Column::Id.is_in(applied.user_bytes.keys().copied()))
            .filter(user::Column::Enabled.eq(true))
            .filter(user::Column::QuotaBytes.gt(0))
            .filter(Expr::col(user::Column::UsageBytes).gte(Expr::col(user::Column::QuotaBytes)))
            .all(&txn)
            .await?;
        for u in &over {
            user::Entity::update_many()
                .col_expr(user::Column::Enabled, Expr::value(false))
                .col_expr(
                    user::Column::DisabledReason,
                    Expr::value(DisableReason::Quota.as_str()),
                )
                .col_expr(user::Column::UpdatedAt, Expr::value(now))
                .filter(user::Column::Id.eq(u.id))
                .exec(&txn)
                .await?;
            applied.disabled.push(u.id);
        }
        if !over.is_empty() {
            settings::touch(&txn).await?;
        }
    }
    if node_id != LOCAL_NODE {
        let current = node::Entity::find_by_id(node_id)
            .select_only()
            .column(node::Column::UsageBytes)
            .into_tuple::<i64>()
            .one(&txn)
            .await?
            .unwrap_or(0);
        if current.checked_add(applied.node_bytes).is_none() {
            applied.refused += 1;
            applied.node_bytes = 0;
        }
        history::record(
            &txn,
            [(history::Subject::Node, node_id, applied.node_bytes)],
            now,
        )
        .await?;
        node::Entity::update_many()
            .col_expr(
                node::Column::UsageBytes,
                Expr::col(node::Column::UsageBytes).add(applied.node_bytes),
            )
            .col_expr(node::Column::PulledAt, Expr::value(now))
            .col_expr(
                node::Column::PullStatus,
                Expr::value(NodeStatus::Available.as_str()),
            )
            .filter(node::Column::Id.eq(node_id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    if applied.ignored > 0 || applied.refused > 0 {
        tracing::warn!(
            node.id = node_id,
            ignored = applied.ignored,
            refused = applied.refused,
            "node reported counters outside its config or beyond what it could have carried"
        );
    }
    for id in &applied.disabled {
        tracing::info!(user.id = id, "user reached the quota and was disabled");
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::{is_refusal_count, parse};

    #[test]
    fn counter_names() {
        assert!(is_refusal_count("outbound>>>block>>>refused>>>connections"));
        assert!(!is_refusal_count("outbound>>>block>>>refused>>>bytes"));
        assert!(!is_refusal_count("user>>>7>>>refused>>>connections"));
        assert_eq!(parse("user>>>7>>>traffic>>>uplink"), Some(("user", "7")));
        assert_eq!(
            parse("inbound>>>remote>>>traffic>>>downlink"),
            Some(("inbound", "remote"))
        );
        assert_eq!(parse("user>>>7>>>traffic>>>sideways"), None);
        assert_eq!(parse("user>>>7>>>online"), None);
        assert_eq!(parse("user>>>7>>>traffic>>>uplink>>>x"), None);
    }
}
