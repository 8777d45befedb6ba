//! The dashboard: users counted by state and reason, traffic today and this month in the settings'
//! time zone (hours around local midnights and the month's start), the 24-hour series, node
//! health and drift, and the last pushes, all exact for a seeded database.

use super::open;
use manager::entity::node::NodeStatus;
use manager::entity::{node, usage_history, user};
use manager::history::Point;
use manager::{NewNode, NewUser, SettingsPatch};
use rules::DisableReason;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-11-30T15:00Z: midnight of 2026-12-01 in Tokyo (UTC+9 all year).
const TOKYO_DEC_1: i64 = 1_796_050_800_000;

/// Seeds history rows `(subject, id, step, at, bytes)`.
async fn seed(db: &manager::DatabaseConnection, rows: &[(&str, i64, &str, i64, i64)]) {
    let models = rows.iter().map(
        |(subject, id, step, at, bytes)| usage_history::ActiveModel {
            subject: Set((*subject).to_owned()),
            subject_id: Set(*id),
            step: Set((*step).to_owned()),
            at: Set(*at),
            bytes: Set(*bytes),
        },
    );
    usage_history::Entity::insert_many(models)
        .exec(db)
        .await
        .expect("seed history");
}

async fn tokyo(t: &super::TestDb) {
    t.manager
        .services
        .settings
        .update(SettingsPatch {
            time_zone: Some("Asia/Tokyo".into()),
            ..Default::default()
        })
        .await
        .expect("time zone");
}

/// Sets user `id`'s state directly (as accounting or the expiry check would have).
async fn set_user(t: &super::TestDb, id: i64, enabled: bool, reason: Option<DisableReason>) {
    user::Entity::update_many()
        .col_expr(user::Column::Enabled, Expr::value(enabled))
        .col_expr(user::Column::DisabledReason, Expr::value(reason))
        .filter(user::Column::Id.eq(id))
        .exec(&t.manager.db)
        .await
        .expect("set user");
}

/// Sets node `id`'s push outcome and health directly (as the coordinator would have).
async fn set_node(
    t: &super::TestDb,
    id: i64,
    push: NodeStatus,
    pull: NodeStatus,
    pushed_at: i64,
    applied: Option<String>,
    error: Option<&str>,
) {
    node::Entity::update_many()
        .col_expr(node::Column::PushStatus, Expr::value(push.as_str()))
        .col_expr(node::Column::PullStatus, Expr::value(pull.as_str()))
        .col_expr(node::Column::PushedAt, Expr::value(pushed_at))
        .col_expr(node::Column::AppliedVersion, Expr::value(applied))
        .col_expr(
            node::Column::LastError,
            Expr::value(error.map(str::to_owned)),
        )
        .filter(node::Column::Id.eq(id))
        .exec(&t.manager.db)
        .await
        .expect("set node");
}

#[tokio::test]
async fn dashboard_counts_users_and_sums_traffic_in_the_settings_time_zone() {
    let t = open().await;
    let s = &t.manager.services;
    tokyo(&t).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        let u = s
            .users
            .create(NewUser {
                name: name.into(),
                ..Default::default()
            })
            .await
            .expect("user");
        ids.push(u.id);
    }
    set_user(&t, ids[3], false, Some(DisableReason::Manual)).await;
    set_user(&t, ids[4], false, Some(DisableReason::Quota)).await;
    set_user(&t, ids[5], false, Some(DisableReason::Expired)).await;
    set_user(&t, ids[6], false, Some(DisableReason::Expired)).await;
    // Disabled without a recorded reason: counted as manual.
    set_user(&t, ids[7], false, None).await;

    // Now: 2026-12-03T03:30Z = 12:30 on 3 December in Tokyo. Today began at 2026-12-02T15:00Z,
    // the month at 2026-11-30T15:00Z.
    let now = TOKYO_DEC_1 + 2 * DAY + 12 * HOUR + 30 * 60_000;
    let today = TOKYO_DEC_1 + 2 * DAY;
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    seed(
        &t.manager.db,
        &[
            // 23:00 on 30 November in Tokyo: last month.
            ("user", a, "hour", TOKYO_DEC_1 - HOUR, 1_000),
            // The month's first hour.
            ("user", a, "hour", TOKYO_DEC_1, 20),
            // 23:00 on 2 December: this month, not today.
            ("user", b, "hour", today - HOUR, 300),
            // Today's first hour, two users.
            ("user", a, "hour", today, 4_000),
            ("user", b, "hour", today, 50_000),
            // The current hour.
            ("user", c, "hour", today + 12 * HOUR, 600_000),
            // A node's bytes and users' daily rows are not added again.
            ("node", 1, "hour", today + 12 * HOUR, 7_000_000),
            ("user", a, "day", today - 15 * HOUR, 123),
        ],
    )
    .await;

    let d = s.dashboard.at(now).await.expect("dashboard");
    assert_eq!(d.generated_at, now);
    let u = d.users;
    assert_eq!((u.total, u.active, u.disabled), (8, 3, 5));
    assert_eq!(
        (
            u.disabled_by.manual,
            u.disabled_by.quota,
            u.disabled_by.expired
        ),
        (2, 1, 2)
    );
    assert_eq!(u.disabled_by.get(DisableReason::Expired), 2);
    assert_eq!(d.traffic.time_zone, "Asia/Tokyo");
    assert_eq!(
        (d.traffic.today_from, d.traffic.month_from),
        (today, TOKYO_DEC_1)
    );
    assert_eq!(d.traffic.today_bytes, 4_000 + 50_000 + 600_000);
    assert_eq!(d.traffic.month_bytes, 20 + 300 + 4_000 + 50_000 + 600_000);
    // 24 hours up to the current one (2026-12-02T04:00Z … 2026-12-03T03:00Z), each present.
    let first = today + 12 * HOUR - 23 * HOUR;
    assert_eq!(d.hourly.len(), 24);
    assert_eq!(
        d.hourly[0],
        Point {
            at: first,
            bytes: 0
        }
    );
    let nonzero: Vec<Point> = d.hourly.iter().copied().filter(|p| p.bytes > 0).collect();
    assert_eq!(
        nonzero,
        [
            Point {
                at: today - HOUR,
                bytes: 300
            },
            Point {
                at: today,
                bytes: 54_000
            },
            Point {
                at: today + 12 * HOUR,
                bytes: 600_000
            },
        ]
    );
    assert!(d.hourly.windows(2).all(|w| w[1].at - w[0].at == HOUR));
    assert_eq!(d.nodes.total, 0);
    assert!(d.pushes.is_empty());

    // In UTC the same rows fall into other days: today began at 2026-12-03T00:00Z.
    s.settings
        .update(SettingsPatch {
            time_zone: Some("UTC".into()),
            ..Default::default()
        })
        .await
        .expect("UTC");
    let utc = s.dashboard.at(now).await.expect("dashboard");
    assert_eq!(utc.traffic.today_from, today + 9 * HOUR);
    assert_eq!(utc.traffic.today_bytes, 600_000);
    assert_eq!(utc.traffic.month_bytes, 300 + 54_000 + 600_000);
}

#[tokio::test]
async fn an_older_month_start_adds_utc_days_to_the_kept_hours() {
    let t = open().await;
    tokyo(&t).await;
    // Now: 2026-12-20T03:30Z, 12:30 on 20 December in Tokyo; hours are kept from 2026-12-13T03:30Z,
    // so hours count from 2026-12-14T00:00Z and UTC days before that, from 2026-12-01 (the UTC
    // day nearest the month's start, 2026-11-30T15:00Z).
    let dec_1 = TOKYO_DEC_1 + 9 * HOUR;
    let now = TOKYO_DEC_1 + 19 * DAY + 12 * HOUR + 30 * 60_000;
    let hours_from = dec_1 + 13 * DAY;
    seed(
        &t.manager.db,
        &[
            ("user", 1, "day", dec_1 - DAY, 1),
            ("user", 1, "day", dec_1, 10),
            ("user", 2, "day", hours_from - DAY, 100),
            // Counted by its hours instead.
            ("user", 2, "day", hours_from, 99_999),
            ("user", 2, "hour", hours_from - HOUR, 55_555),
            ("user", 2, "hour", hours_from + 5 * HOUR, 1_000),
            // Today (from 2026-12-19T15:00Z).
            ("user", 3, "hour", TOKYO_DEC_1 + 19 * DAY + HOUR, 5),
        ],
    )
    .await;
    let d = t
        .manager
        .services
        .dashboard
        .at(now)
        .await
        .expect("dashboard");
    assert_eq!(d.traffic.month_from, TOKYO_DEC_1);
    assert_eq!(d.traffic.today_from, TOKYO_DEC_1 + 19 * DAY);
    assert_eq!(d.traffic.today_bytes, 5);
    assert_eq!(d.traffic.month_bytes, 10 + 100 + 1_000 + 5);
    assert_eq!(d.hourly.iter().map(|p| p.bytes).sum::<i64>(), 5);
}

#[tokio::test]
async fn dashboard_node_health_drift_and_last_pushes() {
    let t = open().await;
    let s = &t.manager.services;
    let mut nodes = Vec::new();
    for (name, port) in [
        ("one", 9001),
        ("two", 9002),
        ("three", 9003),
        ("four", 9004),
    ] {
        let n = s
            .nodes
            .create(NewNode {
                name: Some(name.into()),
                host: "127.0.0.1".into(),
                http_port: port,
                insecure_http: true,
                ..Default::default()
            })
            .await
            .expect("node");
        nodes.push(n.id);
    }
    // A sync pass sets every node's desired version (its pushes fail: nothing listens).
    t.manager.coordinator.sync_once().await.expect("sync");
    let desired = s.nodes.get(nodes[0]).await.expect("node").desired_version;
    assert!(desired.is_some());
    use NodeStatus::{Available, Dirty, Processing, Unavailable};
    // one: healthy, runs its config. two: healthy through the proxy, runs an old config.
    // three: its last push failed. four: never pushed.
    set_node(
        &t,
        nodes[0],
        Available,
        Available,
        1_000,
        desired.clone(),
        None,
    )
    .await;
    set_node(
        &t,
        nodes[1],
        Dirty,
        Processing,
        3_000,
        Some("old".into()),
        None,
    )
    .await;
    set_node(
        &t,
        nodes[2],
        Unavailable,
        Unavailable,
        2_000,
        Some("old".into()),
        Some("connection refused"),
    )
    .await;
    set_node(&t, nodes[3], Processing, Processing, 0, None, None).await;

    let d = s.dashboard.get().await.expect("dashboard");
    let n = d.nodes;
    assert_eq!((n.total, n.healthy, n.unhealthy, n.drift), (4, 2, 2, 3));
    let order: Vec<(i64, i64, NodeStatus)> = d
        .pushes
        .iter()
        .map(|p| (p.node_id, p.pushed_at, p.push_status))
        .collect();
    assert_eq!(
        order,
        [
            (nodes[1], 3_000, Dirty),
            (nodes[2], 2_000, Unavailable),
            (nodes[0], 1_000, Available),
            (nodes[3], 0, Processing),
        ]
    );
    assert_eq!(d.pushes[0].name, "two");
    assert_eq!(
        d.pushes[1].last_error.as_deref(),
        Some("connection refused")
    );
    assert_eq!(d.pushes[2].applied_version, desired);
    assert_eq!(d.pushes[2].desired_version, desired);
    assert_eq!(d.users.total, 0);
    assert_eq!(d.traffic.today_bytes, 0);

    // At most ten pushes are listed.
    for port in 9010..9020 {
        s.nodes
            .create(NewNode {
                host: "127.0.0.1".into(),
                http_port: port,
                insecure_http: true,
                ..Default::default()
            })
            .await
            .expect("node");
    }
    let d = s.dashboard.get().await.expect("dashboard");
    assert_eq!(d.nodes.total, 14);
    assert_eq!(d.pushes.len(), 10);
    assert_eq!(d.pushes[0].node_id, nodes[1]);
}
