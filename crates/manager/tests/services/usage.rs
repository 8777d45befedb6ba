//! Usage over time: per-node usage multipliers (applied exactly once, without rounding drift),
//! the hourly and daily history written with the totals, resets by an administrator and on a
//! schedule in the settings' time zone.

use super::{counter_node, counting_for, field, open, stat};
use manager::entity::{usage_history, user};
use manager::history::{self, Point, Step};
use manager::{accounting, NewNode, NewUser, NodePatch, ServiceError, SettingsPatch, UserPatch};
use rules::{DisableReason, ResetStrategy};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn now() -> i64 {
    manager::util::now_ms()
}

fn sum(points: &[Point]) -> i64 {
    points.iter().map(|p| p.bytes).sum()
}

#[tokio::test]
async fn a_node_multiplier_counts_exactly_and_the_history_matches_the_totals() {
    let t = open().await;
    let s = &t.manager.services;
    let db = &t.manager.db;
    let u = s
        .users
        .create(NewUser {
            name: "u".into(),
            ..Default::default()
        })
        .await
        .expect("user");
    let n = s
        .nodes
        .create(NewNode {
            host: "127.0.0.1".into(),
            http_port: 9,
            insecure_http: true,
            usage_multiplier: Some(1.5),
            ..Default::default()
        })
        .await
        .expect("node");
    assert_eq!(n.usage_multiplier_permille, 1500);
    let exp = accounting::Expected::Node {
        users: [u.id].into(),
        inbounds: ["remote".to_owned()].into(),
        outbounds: Default::default(),
    };
    let up = format!("user>>>{}>>>traffic>>>uplink", u.id);
    let inbound = "inbound>>>remote>>>traffic>>>uplink";
    // Odd cumulative values: each pull alone would round, the total must not drift.
    for v in [1u64, 2, 5, 8, 1001] {
        accounting::apply(db, n.id, "e1", &[stat(&up, v), stat(inbound, v)], &exp)
            .await
            .expect("apply");
    }
    let after = s.users.get(u.id).await.expect("user");
    assert_eq!(after.usage_bytes, 1501, "floor(1001 × 1.5), credited once");
    let node = s.nodes.get(n.id).await.expect("node");
    assert_eq!(
        node.usage_bytes, 1001,
        "the node's own total is what it carried"
    );
    // The history adds up to the totals, hour and day alike.
    let (from, to) = (now() - DAY, now() + HOUR);
    for step in [Step::Hour, Step::Day] {
        let user_points = s
            .users
            .usage_history(u.id, step, from, to)
            .await
            .expect("history");
        assert_eq!(sum(&user_points), 1501, "{step:?}");
        assert_eq!(user_points.len(), 1, "one bucket: {user_points:?}");
        assert_eq!(user_points[0].at, step.bucket(user_points[0].at));
        let node_points = s
            .nodes
            .usage_history(n.id, step, from, to)
            .await
            .expect("history");
        assert_eq!(sum(&node_points), 1001, "{step:?}");
    }
    // A multiplier of 0: the node's bytes still count for the node, not for its users.
    s.nodes
        .update(
            n.id,
            NodePatch {
                usage_multiplier: Some(0.0),
                ..Default::default()
            },
        )
        .await
        .expect("free node");
    accounting::apply(
        db,
        n.id,
        "e1",
        &[stat(&up, 2001), stat(inbound, 2001)],
        &exp,
    )
    .await
    .expect("apply");
    assert_eq!(s.users.get(u.id).await.expect("user").usage_bytes, 1501);
    assert_eq!(s.nodes.get(n.id).await.expect("node").usage_bytes, 2001);
    let hours = s
        .users
        .usage_history(u.id, Step::Hour, from, to)
        .await
        .expect("history");
    assert_eq!(sum(&hours), 1501);
    // Refused values change nothing.
    for bad in [-1.0, 100.5, 0.0001] {
        let refused = s
            .nodes
            .update(
                n.id,
                NodePatch {
                    usage_multiplier: Some(bad),
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(&refused, Err(e @ ServiceError::Invalid { .. }) if field(e) == "usage_multiplier"),
            "{bad}: {refused:?}"
        );
    }
    assert_eq!(
        s.nodes
            .get(n.id)
            .await
            .expect("node")
            .usage_multiplier_permille,
        0
    );
    // Queries: an empty or a too long range is refused; an unknown user is not found.
    let empty = s.users.usage_history(u.id, Step::Hour, to, from).await;
    assert!(matches!(&empty, Err(e @ ServiceError::Invalid { .. }) if field(e) == "to"));
    let long = s
        .users
        .usage_history(u.id, Step::Hour, 0, 20_000 * HOUR)
        .await;
    assert!(matches!(&long, Err(e @ ServiceError::Invalid { .. }) if field(e) == "to"));
    let unknown = s
        .users
        .usage_history(u.id + 100, Step::Hour, from, to)
        .await;
    assert!(matches!(unknown, Err(ServiceError::NotFound(_))));
    // Deleting the user deletes its history.
    s.users.delete(u.id).await.expect("delete");
    let left = usage_history::Entity::find()
        .filter(usage_history::Column::Subject.eq("user"))
        .all(db)
        .await
        .expect("rows");
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_reset_zeroes_usage_and_lifts_only_a_quota_disable() {
    let t = open().await;
    let s = &t.manager.services;
    let db = &t.manager.db;
    let mk = |name: &str| NewUser {
        name: name.into(),
        quota_bytes: 1_000,
        ..Default::default()
    };
    let q = s.users.create(mk("quota")).await.expect("user");
    let m = s.users.create(mk("manual")).await.expect("user");
    let e = s.users.create(mk("expired")).await.expect("user");
    let n = counter_node(&t).await;
    let exp = counting_for(&[q.id, m.id, e.id]);
    let stats: Vec<_> = [q.id, m.id, e.id]
        .iter()
        .map(|id| stat(&format!("user>>>{id}>>>traffic>>>uplink"), 1_000))
        .collect();
    accounting::apply(db, n.id, "e1", &stats, &exp)
        .await
        .expect("apply");
    s.users
        .update(
            m.id,
            UserPatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("disable");
    s.users
        .update(
            e.id,
            UserPatch {
                expire_at: Some(Some(now() - 1)),
                ..Default::default()
            },
        )
        .await
        .expect("expire");
    let state = |u: &user::Model| (u.usage_bytes, u.enabled, u.disabled_reason);
    assert_eq!(
        state(&s.users.get(q.id).await.expect("q")),
        (1_000, false, Some(DisableReason::Quota))
    );
    // An unknown id: nothing is reset.
    let refused = s.users.reset_usage(&[q.id, 999_999]).await;
    assert!(
        matches!(refused, Err(ServiceError::NotFound(_))),
        "{refused:?}"
    );
    assert_eq!(s.users.get(q.id).await.expect("q").usage_bytes, 1_000);
    let none = s.users.reset_usage(&[]).await;
    assert!(matches!(&none, Err(e @ ServiceError::Invalid { .. }) if field(e) == "ids"));
    let before = now();
    let reset = s
        .users
        .reset_usage(&[q.id, m.id, e.id])
        .await
        .expect("reset");
    let states: Vec<_> = reset.iter().map(state).collect();
    assert_eq!(
        states,
        [
            (0, true, None),
            (0, false, Some(DisableReason::Manual)),
            (0, false, Some(DisableReason::Expired)),
        ]
    );
    assert!(reset.iter().all(|u| u.usage_reset_at >= before));
    // The history keeps what was carried before the reset.
    let day = s
        .users
        .usage_history(q.id, Step::Day, now() - DAY, now() + DAY)
        .await
        .expect("history");
    assert_eq!(sum(&day), 1_000);
    // A node's usage is reset on its own.
    let node = s.nodes.reset_usage(n.id).await.expect("node reset");
    assert_eq!(node.usage_bytes, 0);
    assert!(matches!(
        s.nodes.reset_usage(n.id + 100).await,
        Err(ServiceError::NotFound(_))
    ));
}

#[tokio::test]
async fn scheduled_resets_follow_the_strategy_and_the_time_zone() {
    let t = open().await;
    let s = &t.manager.services;
    let db = &t.manager.db;
    let u = s
        .users
        .create(NewUser {
            name: "daily".into(),
            quota_bytes: 1_000,
            reset_strategy: ResetStrategy::Daily,
            ..Default::default()
        })
        .await
        .expect("user");
    let next_midnight = |offset: i64| {
        let local = now() + offset;
        local - local.rem_euclid(DAY) + DAY - offset
    };
    assert_eq!(u.next_reset_at, Some(next_midnight(0)));
    let never = s
        .users
        .create(NewUser {
            name: "never".into(),
            ..Default::default()
        })
        .await
        .expect("user");
    assert_eq!(never.next_reset_at, None);
    // Another zone (Tokyo has no summer time: UTC+9) moves every scheduled reset.
    s.settings
        .update(SettingsPatch {
            time_zone: Some("Asia/Tokyo".into()),
            ..Default::default()
        })
        .await
        .expect("zone");
    let u = s.users.get(u.id).await.expect("user");
    assert_eq!(u.next_reset_at, Some(next_midnight(9 * HOUR)));
    let bad = s
        .settings
        .update(SettingsPatch {
            time_zone: Some("Mars/Olympus_Mons".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(&bad, Err(e @ ServiceError::Invalid { .. }) if field(e) == "time_zone"));
    assert_eq!(
        s.settings.get().await.expect("settings").time_zone,
        "Asia/Tokyo"
    );
    // Monthly on the 31st; a day out of range is refused.
    let monthly = s
        .users
        .update(
            u.id,
            UserPatch {
                reset_strategy: Some(ResetStrategy::Monthly),
                reset_day: Some(31),
                ..Default::default()
            },
        )
        .await
        .expect("monthly");
    assert_eq!(
        (monthly.reset_strategy, monthly.reset_day),
        (ResetStrategy::Monthly, 31)
    );
    let next = monthly.next_reset_at.expect("scheduled");
    assert!(next > now() && next <= now() + 32 * DAY, "{next}");
    let bad = s
        .users
        .update(
            u.id,
            UserPatch {
                reset_day: Some(32),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(&bad, Err(e @ ServiceError::Invalid { .. }) if field(e) == "reset_day"));

    // Use the quota up, then let the reset come (moved into the past: the check reads the
    // clock): usage zero, enabled again, the next reset scheduled ahead.
    let n = counter_node(&t).await;
    let exp = counting_for(&[u.id]);
    let up = format!("user>>>{}>>>traffic>>>uplink", u.id);
    accounting::apply(db, n.id, "e1", &[stat(&up, 1_500)], &exp)
        .await
        .expect("apply");
    assert_eq!(
        s.users.get(u.id).await.expect("user").disabled_reason,
        Some(DisableReason::Quota)
    );
    assert_eq!(s.users.reset_due().await.expect("check"), Vec::<i64>::new());
    user::Entity::update_many()
        .col_expr(user::Column::NextResetAt, Expr::value(now() - 1))
        .filter(user::Column::Id.eq(u.id))
        .exec(db)
        .await
        .expect("move the reset");
    assert_eq!(s.users.reset_due().await.expect("check"), vec![u.id]);
    let u = s.users.get(u.id).await.expect("user");
    assert_eq!(
        (u.usage_bytes, u.enabled, u.disabled_reason),
        (0, true, None)
    );
    assert!(u.next_reset_at.is_some_and(|at| at > now()));
    assert_eq!(s.users.reset_due().await.expect("again"), Vec::<i64>::new());
    // Counting goes on from the node's cumulative counter: only what is new counts.
    accounting::apply(db, n.id, "e1", &[stat(&up, 1_600)], &exp)
        .await
        .expect("apply");
    assert_eq!(s.users.get(u.id).await.expect("user").usage_bytes, 100);
}

#[tokio::test]
async fn old_history_is_pruned_hourly_after_7_days_and_daily_after_400() {
    let t = open().await;
    let db = &t.manager.db;
    let now = now();
    let row = |step: Step, age: i64| usage_history::ActiveModel {
        subject: Set("user".into()),
        subject_id: Set(1),
        step: Set(step.as_str().into()),
        at: Set(step.bucket(now - age)),
        bytes: Set(1),
    };
    usage_history::Entity::insert_many([
        row(Step::Hour, 8 * DAY),
        row(Step::Hour, 6 * DAY),
        row(Step::Day, 401 * DAY),
        row(Step::Day, 399 * DAY),
    ])
    .exec(db)
    .await
    .expect("insert");
    assert_eq!(history::prune(db, now).await.expect("prune"), 2);
    assert_eq!(history::prune(db, now).await.expect("again"), 0);
    let left = usage_history::Entity::find().all(db).await.expect("rows");
    let ages: Vec<(String, i64)> = left
        .iter()
        .map(|r| (r.step.clone(), (now - r.at) / DAY))
        .collect();
    assert_eq!(ages.len(), 2, "{ages:?}");
    assert!(
        ages.contains(&("hour".into(), 6)) && ages.contains(&("day".into(), 399)),
        "{ages:?}"
    );
}
