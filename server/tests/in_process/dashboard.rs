//! `GET /v1/dashboard` against an in-process manager and node: users counted by state, traffic
//! counted through the accounting path summed for today, this month and the hourly series, and
//! the registered node healthy, without drift, in the last pushes.

use crate::support::{wait_until, TestApp};
use manager::accounting::{self, Expected, LOCAL_NODE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use xray::api::Stat;

#[tokio::test]
async fn the_dashboard_counts_users_traffic_and_node_health() {
    let app = TestApp::builder().nodes(1).start().await;
    let m = &app.manager.api;
    let (st, _) = m
        .request_as(
            Method::GET,
            "/v1/dashboard",
            "wrong-token-wrong-token",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, empty) = m.get("/v1/dashboard").await;
    assert_eq!(st, StatusCode::OK, "{empty}");
    assert_eq!(empty["users"]["total"], 0);
    assert_eq!(empty["nodes"]["total"], 0);
    assert_eq!(empty["traffic"]["today_bytes"], 0);
    assert_eq!(empty["traffic"]["time_zone"], "UTC");
    assert_eq!(empty["pushes"], json!([]));

    // Three users: one enabled, one disabled by hand, one over its quota.
    let mut ids = Vec::new();
    for name in ["ann", "bob", "cid"] {
        let (st, u) = m.post("/v1/users", &json!({"name": name})).await;
        assert_eq!(st, StatusCode::CREATED, "{u}");
        ids.push(u["id"].as_i64().expect("id"));
    }
    let (st, _) = m
        .patch(&format!("/v1/users/{}", ids[1]), &json!({"enabled": false}))
        .await;
    assert_eq!(st, StatusCode::OK);

    // Traffic through the accounting path (the manager's own data plane, as its pull would count
    // it): ann 3 345 bytes, cid 5 000 bytes with a quota of 4 000 (disabled for it).
    let (st, _) = m
        .patch(
            &format!("/v1/users/{}", ids[2]),
            &json!({"quota_bytes": 4000}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let stat = |id: i64, dir: &str, value: u64| Stat {
        name: format!("user>>>{id}>>>traffic>>>{dir}"),
        value,
    };
    let stats = [
        stat(ids[0], "uplink", 1_000),
        stat(ids[0], "downlink", 2_345),
        stat(ids[2], "downlink", 5_000),
    ];
    accounting::apply(
        &app.manager.db,
        LOCAL_NODE,
        "dash",
        &stats,
        &Expected::Local,
    )
    .await
    .expect("count traffic");

    // The node: registered, pushed and pulled, running its current config.
    let node = app.register(0).await;
    let id = node["id"].as_i64().expect("id");
    wait_until(
        "the node to be healthy without drift",
        Duration::from_secs(15),
        || async {
            let (_, d) = m.get("/v1/dashboard").await;
            d["nodes"]["healthy"] == 1 && d["nodes"]["drift"] == 0
        },
    )
    .await;
    let (st, d) = m.get("/v1/dashboard").await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(
        d["users"],
        json!({"total": 3, "active": 1, "disabled": 2,
            "disabled_by": {"manual": 1, "quota": 1, "expired": 0}})
    );
    let total = 1_000 + 2_345 + 5_000;
    assert_eq!(d["traffic"]["today_bytes"], total);
    assert_eq!(d["traffic"]["month_bytes"], total);
    let hourly = d["hourly"].as_array().expect("hourly");
    assert_eq!(hourly.len(), 24);
    let sum: i64 = hourly.iter().filter_map(|p| p["bytes"].as_i64()).sum();
    assert_eq!(sum, total);
    assert_eq!(
        d["nodes"],
        json!({"total": 1, "healthy": 1, "unhealthy": 0, "drift": 0})
    );
    let (_, record) = m.get(&format!("/v1/nodes/{id}")).await;
    let pushes = d["pushes"].as_array().expect("pushes");
    assert_eq!(pushes.len(), 1);
    let push: &Value = &pushes[0];
    assert_eq!(push["node_id"], id);
    assert_eq!(push["name"], record["name"]);
    assert_eq!(push["push_status"], "available");
    assert_eq!(push["drift"], false);
    assert_eq!(push["applied_version"], record["applied_version"]);
    assert!(push["pushed_at"].as_i64().is_some_and(|t| t > 0), "{push}");
    assert_eq!(push["last_error"], Value::Null);
}
