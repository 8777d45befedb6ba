//! The manual restart (`NodeService::restart`: push now, the node re-applies its full config from
//! scratch) and drift (`desired_version` against the node-reported `applied_version`), against
//! an in-process manager and a real node.

use crate::support::{wait_until, EventStream, TestApp};
use manager::{NewUser, NodeStatus, ServiceError, SettingsPatch};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

/// Bound on what the coordinator's fast loops do (a push, a pull, the events that follow).
const WITHIN: Duration = Duration::from_secs(15);

#[tokio::test]
async fn restart_pushes_at_once_and_drift_follows_changes_and_pushes() {
    let mut app = TestApp::builder().nodes(1).start().await;
    let s = app.manager.services.clone();
    // Remote mode: the node's config lists every user, so a new user changes it.
    s.settings
        .update(SettingsPatch {
            ss_remote_port: Some(testkit::net::free_port()),
            ..Default::default()
        })
        .await
        .expect("remote mode on");
    let id = app.register(0).await["id"].as_i64().expect("id");
    let bearer = format!("Bearer {}", app.manager.admin_token);
    let mut events = EventStream::open(&app.manager, ("authorization", &bearer)).await;

    // Pushed by the sync loop: no drift, and what the node runs is the desired version.
    wait_until("the first push", WITHIN, || async {
        let n = s.nodes.get(id).await.expect("node");
        n.push_status == NodeStatus::Available && n.desired_version.is_some() && !n.has_drift()
    })
    .await;
    let synced = s.nodes.get(id).await.expect("node");
    assert_eq!(synced.applied_version, synced.desired_version);
    let (_, running) = app.nodes[0].api.get("/v1/configs").await;
    assert_eq!(
        running["version"].as_str(),
        synced.desired_version.as_deref()
    );
    let listed = s.nodes.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].desired_version, synced.desired_version);

    // The node goes away, then a user is added: the desired version moves with the sync pass
    // that follows the change (debounced), the applied one stays (no push can reach the node).
    app.nodes[0].stop().await;
    s.users
        .create(NewUser {
            name: "alice".into(),
            enabled: true,
            ..Default::default()
        })
        .await
        .expect("alice");
    wait_until("the desired version to move", WITHIN, || async {
        let n = s.nodes.get(id).await.expect("node");
        n.desired_version.is_some() && n.desired_version != synced.desired_version
    })
    .await;
    let drifted = s.nodes.get(id).await.expect("node");
    assert_ne!(drifted.desired_version, synced.desired_version);
    assert_eq!(drifted.applied_version, synced.applied_version);
    assert!(drifted.has_drift());
    let (st, shown) = app.manager.api.get(&format!("/v1/nodes/{id}")).await;
    assert_eq!(st, StatusCode::OK, "{shown}");
    assert_eq!(shown["drift"], true);
    assert_eq!(
        shown["desired_version"].as_str(),
        drifted.desired_version.as_deref()
    );
    assert_eq!(
        shown["applied_version"].as_str(),
        synced.applied_version.as_deref()
    );
    // Live: the pass sends the node's event with the new desired version, before any push.
    let live = events
        .wait_for("node", WITHIN, |e| {
            e["id"] == id && e["desired_version"].as_str() == drifted.desired_version.as_deref()
        })
        .await;
    assert_ne!(live["desired_version"], live["applied_version"], "{live}");
    assert_eq!(
        live["applied_version"].as_str(),
        synced.applied_version.as_deref(),
        "{live}"
    );

    // A restart of an unreachable node fails like a push: recorded, and the panel is told.
    let err = s.nodes.restart(id).await.expect_err("the node is down");
    assert!(matches!(err, ServiceError::Unreachable(_)), "{err:?}");
    let failed = s.nodes.get(id).await.expect("node");
    assert_eq!(failed.push_status, NodeStatus::Unavailable);
    assert!(failed.last_error.is_some());
    assert_eq!(failed.applied_version, synced.applied_version);
    events
        .wait_for("node", WITHIN, |e| {
            e["id"] == id && e["push_status"] == "unavailable"
        })
        .await;
    // Unknown node: NotFound, nothing pushed.
    let missing = s.nodes.restart(id + 100).await.expect_err("unknown id");
    assert!(matches!(missing, ServiceError::NotFound(_)), "{missing:?}");
    // Over REST: 404 for an unknown node, 502 with the reason for one that is down.
    let restart = |id: i64| format!("/v1/nodes/{id}/restart");
    let (st, body) = app.manager.api.post(&restart(id + 100), &json!({})).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
    let (st, body) = app.manager.api.post(&restart(id), &json!({})).await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );

    // The node is back: the next push (the sync loop's or the restart's) ends the drift.
    app.nodes[0].restart().await;
    wait_until("the drift to end", WITHIN, || async {
        let n = s.nodes.get(id).await.expect("node");
        n.push_status == NodeStatus::Available && !n.has_drift()
    })
    .await;
    let back = s.nodes.get(id).await.expect("node");
    assert_eq!(back.applied_version, drifted.desired_version);
    assert_eq!(back.last_error, None);
    // Live: the push's event shows both versions equal again.
    events
        .wait_for("node", WITHIN, |e| {
            e["id"] == id
                && e["push_status"] == "available"
                && e["applied_version"].as_str() == drifted.desired_version.as_deref()
                && e["desired_version"] == e["applied_version"]
        })
        .await;

    // A restart of a node that runs its config already: a plain push would change nothing, the
    // restart re-applies it at once (the node's applied_at moves) and is recorded as a push.
    let (_, before) = app.nodes[0].api.get("/v1/configs").await;
    let applied_at = before["applied_at"].as_i64().expect("applied_at");
    wait_until("the clock to pass the last apply", WITHIN, || async {
        manager::util::now_ms() > applied_at
    })
    .await;
    let restarted = s.nodes.restart(id).await.expect("restart");
    assert_eq!(restarted.id, id);
    assert_eq!(restarted.push_status, NodeStatus::Available);
    assert_eq!(restarted.last_error, None);
    assert_eq!(restarted.desired_version, drifted.desired_version);
    assert_eq!(restarted.applied_version, restarted.desired_version);
    assert!(!restarted.has_drift());
    assert!(restarted.pushed_at > applied_at, "pushed just now");
    let (_, after) = app.nodes[0].api.get("/v1/configs").await;
    assert_eq!(after["version"], before["version"], "the same config runs");
    let reapplied = after["applied_at"].as_i64().expect("applied_at");
    assert!(
        reapplied > applied_at,
        "re-applied: {reapplied} after {applied_at}"
    );
    assert!(reapplied <= restarted.pushed_at);
    events
        .wait_for("node", WITHIN, |e| {
            e["id"] == id
                && e["push_status"] == "available"
                && e["pushed_at"] == restarted.pushed_at
                && e["applied_version"].as_str() == restarted.desired_version.as_deref()
        })
        .await;

    // The same over REST: the node after the push, without drift.
    let (st, body) = app.manager.api.post(&restart(id), &json!({})).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id);
    assert_eq!(body["push_status"], "available");
    assert_eq!(body["drift"], false);
    assert_eq!(body["applied_version"], body["desired_version"]);
    assert_eq!(
        body["desired_version"].as_str(),
        restarted.desired_version.as_deref()
    );
    assert!(body["pushed_at"]
        .as_i64()
        .is_some_and(|t| t >= restarted.pushed_at));
}
