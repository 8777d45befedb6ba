//! Exactly-once traffic accounting. Nodes report cumulative counters per epoch; for every
//! (node, epoch, counter) we store the last value applied, in the same transaction as the usage it
//! added. A lost reply, a retried pull or a manager restart therefore adds nothing twice; a new
//! epoch (node crash, wiped data dir) starts from zero and adds nothing twice either.

use crate::entity::node::{self, NodeStatus};
use crate::entity::{stats_cursor, user};
use crate::services::{settings, users::REASON_QUOTA};
use crate::{util, Result};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use std::collections::{BTreeMap, HashMap};
use xray::api::Stat;

/// Node id under which the manager's own engine is accounted.
pub const LOCAL_NODE: i64 = 0;

/// What one pull changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Bytes added to the node's usage.
    pub node_bytes: i64,
    /// Bytes added per user id.
    pub user_bytes: BTreeMap<i64, i64>,
    /// Users disabled because they reached their quota.
    pub disabled: Vec<i64>,
}

/// Splits a counter name into (kind, subject, direction): `user>>>7>>>traffic>>>uplink`.
fn parse(name: &str) -> Option<(&str, &str)> {
    let mut parts = name.split(">>>");
    let kind = parts.next()?;
    let subject = parts.next()?;
    (parts.next()? == "traffic").then_some(())?;
    matches!(parts.next()?, "uplink" | "downlink").then_some(())?;
    parts.next().is_none().then_some((kind, subject))
}

/// Applies one pull of `node_id` (epoch `epoch`) exactly once. For a real node it also records the
/// successful pull (`pulled_at`, pull status `available`) in the same transaction.
pub async fn apply(
    db: &DatabaseConnection,
    node_id: i64,
    epoch: &str,
    stats: &[Stat],
) -> Result<Applied> {
    let txn = crate::db::write_txn(db).await?;
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
    for stat in stats {
        let value = i64::try_from(stat.value).unwrap_or(i64::MAX);
        let prev = previous.get(stat.name.as_str()).copied().unwrap_or(0);
        if value == prev {
            continue;
        }
        let delta = if value > prev {
            value - prev
        } else {
            tracing::warn!(node.id = node_id, counter = %stat.name, prev, value, "counter went backwards within an epoch; ignoring");
            0
        };
        moved.push(stats_cursor::ActiveModel {
            node_id: Set(node_id),
            epoch: Set(epoch.to_owned()),
            name: Set(stat.name.clone()),
            value: Set(value),
        });
        match parse(&stat.name) {
            Some(("user", id)) => {
                if let Ok(id) = id.parse::<i64>() {
                    *applied.user_bytes.entry(id).or_default() += delta;
                }
            }
            Some(("inbound", _)) => applied.node_bytes += delta,
            _ => {}
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
    for (&id, &bytes) in applied.user_bytes.iter().filter(|(_, b)| **b > 0) {
        user::Entity::update_many()
            .col_expr(
                user::Column::UsageBytes,
                Expr::col(user::Column::UsageBytes).add(bytes),
            )
            .filter(user::Column::Id.eq(id))
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
                .col_expr(user::Column::DisabledReason, Expr::value(REASON_QUOTA))
                .col_expr(user::Column::UpdatedAt, Expr::value(util::now_ms()))
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
        node::Entity::update_many()
            .col_expr(
                node::Column::UsageBytes,
                Expr::col(node::Column::UsageBytes).add(applied.node_bytes),
            )
            .col_expr(node::Column::PulledAt, Expr::value(util::now_ms()))
            .col_expr(
                node::Column::PullStatus,
                Expr::value(NodeStatus::Available.as_str()),
            )
            .filter(node::Column::Id.eq(node_id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    for id in &applied.disabled {
        tracing::info!(user.id = id, "user reached the quota and was disabled");
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn counter_names() {
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
