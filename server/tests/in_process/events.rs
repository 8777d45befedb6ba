//! `GET /events`: who may subscribe, and a node's health changes reaching a subscriber.

use crate::support::{client, EventStream, TestApp};
use reqwest::StatusCode;
use std::time::Duration;

#[tokio::test]
async fn a_subscriber_sees_a_node_become_available_and_then_unavailable() {
    let mut app = TestApp::builder().nodes(1).start().await;

    // No credentials, or a wrong token: 401.
    let anonymous = client()
        .get(app.manager.url("/events"))
        .send()
        .await
        .expect("GET /events");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = client()
        .get(app.manager.url("/events"))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .expect("GET /events");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let bearer = format!("Bearer {}", app.manager.admin_token);
    let mut events = EventStream::open(&app.manager, ("authorization", &bearer)).await;
    let id = app.register(0).await["id"].as_i64().expect("id");

    // Pushed (the node applied the config) and pulled.
    let up = events
        .wait_for("node", Duration::from_secs(15), |e| {
            e["id"] == id && e["push_status"] == "available" && e["pull_status"] == "available"
        })
        .await;
    let (_, applied) = app.nodes[0].api.get("/v1/configs").await;
    assert_eq!(up["applied_version"], applied["version"]);

    // The node stops: no pull succeeds, and after the pull timeout (1.5 s) it is unavailable.
    app.nodes[0].stop().await;
    let down = events
        .wait_for("node", Duration::from_secs(15), |e| {
            e["id"] == id && e["pull_status"] == "unavailable"
        })
        .await;
    assert_eq!(down["push_status"], "available", "no push was attempted");
    let (_, record) = app.manager.api.get(&format!("/v1/nodes/{id}")).await;
    assert_eq!(record["pull_status"], "unavailable");
}
