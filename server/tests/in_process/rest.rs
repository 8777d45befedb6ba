//! The REST API's guards and CRUD, node registration with push and pull, and the node API's
//! guards, against an in-process manager and node.

use crate::support::{wait_until, TestApp, NODE_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn node_registration_push_pull_and_api_guards() {
    let app = TestApp::builder().nodes(1).start().await;
    let (m, n) = (&app.manager.api, &app.nodes[0].api);

    // REST guards: a wrong token → 401; an unknown field → 400 naming it; nothing created.
    let (st, _) = m
        .request_as(Method::GET, "/v1/nodes", "wrong-token-wrong-token", None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, body) = m
        .post(
            "/v1/nodes",
            &json!({"host": "127.0.0.1", "http_port": app.nodes[0].port(), "colour": "red"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("colour"),
        "{body}"
    );
    let (st, list) = m.get("/v1/nodes").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list, json!([]));

    // Registered: pushed and pulled; the token is shown once.
    let created = app.register(0).await;
    assert_eq!(
        created["http_token"], NODE_TOKEN,
        "the token is shown at creation"
    );
    let id = created["id"].as_i64().expect("id");
    let node_path = format!("/v1/nodes/{id}");
    wait_until(
        "push and pull to succeed",
        Duration::from_secs(15),
        || async {
            let (_, v) = m.get(&node_path).await;
            v["push_status"] == "available" && v["pull_status"] == "available"
        },
    )
    .await;
    let (_, record) = m.get(&node_path).await;
    assert!(
        record.get("http_token").is_none(),
        "the token is not shown again"
    );
    let (st, applied) = n.get("/v1/configs").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(applied["version"], record["applied_version"]);
    assert!(applied["metadata"]["updated_at"]
        .as_str()
        .is_some_and(|s| s.ends_with('Z')));
    let version = applied["version"].clone();
    let (st, info) = n.get("/v1/info").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(info["config_version"], version);
    assert_eq!(info["epoch"], app.nodes[0].state.epoch());

    // Node API guards: a wrong or missing token → 401 and the config is unchanged.
    let (st, _) = n
        .request_as(
            Method::POST,
            "/v1/configs",
            "not-the-node-token-xx",
            Some(&json!({"inbounds": []})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = n.request_as(Method::GET, "/v1/stats", "", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // An invalid config → 400 with the field path, config unchanged.
    let bad = json!({"inbounds": [{"tag": "x", "port": 0, "protocol": "shadowsocks",
        "settings": {"method": "aes-256-gcm", "password": "p", "network": "tcp"}}], "outbounds": []});
    let (st, body) = n.post("/v1/configs", &bad).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(body["path"], "inbounds[0].port", "{body}");
    let (_, still) = n.get("/v1/configs").await;
    assert_eq!(still["version"], version);
}

#[tokio::test]
async fn rest_users_and_settings() {
    let app = TestApp::builder().start().await;
    let m = &app.manager.api;

    let (st, u) = m
        .post("/v1/users", &json!({"name": "alice", "quota_bytes": 1000}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{u}");
    let id = u["id"].as_i64().expect("id");
    let (st, e) = m.post("/v1/users", &json!({"name": "alice"})).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(e["field"], "name");
    let (st, e) = m.post("/v1/users", &json!({"name": 5})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["field"], "name");
    let (st, e) = m
        .patch(&format!("/v1/users/{id}"), &json!({"enabled": false}))
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e["enabled"], false);
    assert_eq!(e["disabled_reason"], "manual");

    let (st, s) = m
        .put(
            "/v1/settings",
            &json!({"ss_direct_port": 9000, "ss_remote_port": 9000}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(s["field"], "ss_remote_port");
    // The manager runs no local data plane here: nothing listens on the port, the links follow.
    let (st, s) = m
        .put(
            "/v1/settings",
            &json!({"ss_direct_port": 18388, "host": "127.0.0.1"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    assert_eq!(s["ss_direct_port"], 18388);
    let (st, links) = m.get(&format!("/v1/users/{id}/links")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(links[0]["mode"], "direct");
    assert!(
        links[0]["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("@127.0.0.1:18388#alice-direct"),
        "{links}"
    );

    // Resets and history: the schedule fields, the time zone, resets one and many (all or
    // nothing), and usage queries with their errors.
    let (st, u) = m
        .patch(
            &format!("/v1/users/{id}"),
            &json!({"reset_strategy": "monthly", "reset_day": 15}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert_eq!(
        (u["reset_strategy"].as_str(), u["reset_day"].as_i64()),
        (Some("monthly"), Some(15))
    );
    assert!(u["next_reset_at"].as_i64().is_some(), "{u}");
    let (st, e) = m
        .patch(
            &format!("/v1/users/{id}"),
            &json!({"reset_strategy": "hourly"}),
        )
        .await;
    assert_eq!(
        (st, e["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reset_strategy")),
        "{e}"
    );
    let (st, s) = m
        .put("/v1/settings", &json!({"time_zone": "Europe/Berlin"}))
        .await;
    assert_eq!(
        (st, s["time_zone"].as_str()),
        (StatusCode::OK, Some("Europe/Berlin")),
        "{s}"
    );
    let (st, e) = m
        .put("/v1/settings", &json!({"time_zone": "Nowhere/Land"}))
        .await;
    assert_eq!(
        (st, e["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("time_zone")),
        "{e}"
    );
    let (st, u) = m
        .post(&format!("/v1/users/{id}/reset-usage"), &json!({}))
        .await;
    assert_eq!(
        (st, u["usage_bytes"].as_i64()),
        (StatusCode::OK, Some(0)),
        "{u}"
    );
    let (st, e) = m
        .post("/v1/users/reset-usage", &json!({"ids": [id, id + 1000]}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{e}");
    let (st, list) = m.post("/v1/users/reset-usage", &json!({"ids": [id]})).await;
    assert_eq!(
        (st, list[0]["id"].as_i64()),
        (StatusCode::OK, Some(id)),
        "{list}"
    );
    let (st, h) = m
        .get(&format!("/v1/users/{id}/usage?step=day&from=0&to=86400000"))
        .await;
    assert_eq!(st, StatusCode::OK, "{h}");
    assert_eq!(
        h,
        json!({"step": "day", "from": 0, "to": 86_400_000, "points": [], "total_bytes": 0})
    );
    for (query, field) in [
        ("step=week", "step"),
        ("from=yesterday", "from"),
        ("from=10&to=5", "to"),
    ] {
        let (st, e) = m.get(&format!("/v1/users/{id}/usage?{query}")).await;
        assert_eq!(
            (st, e["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{query}: {e}"
        );
    }
    let (st, _) = m.get(&format!("/v1/users/{}/usage", id + 1000)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    assert_eq!(
        m.delete(&format!("/v1/users/{id}")).await,
        StatusCode::NO_CONTENT
    );
    let (st, _) = m.get(&format!("/v1/users/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// `GET /v1/users` is paged: the array of one page, `x-total-count`, and while there is more,
/// `x-next-cursor` and a `link` to the next page keeping the other parameters; bad parameters
/// are a 400 naming them.
#[tokio::test]
async fn rest_users_are_paged_with_total_and_next_link() {
    let app = TestApp::builder().start().await;
    let m = &app.manager;
    let mut names = Vec::new();
    for i in 0..12 {
        let name = if i % 2 == 0 {
            format!("pre_{i:02}")
        } else {
            format!("prex{i:02}")
        };
        m.services
            .users
            .create(manager::NewUser {
                name: name.clone(),
                ..Default::default()
            })
            .await
            .expect("create");
        names.push(name);
    }
    let get = move |path: String| async move {
        let r = m
            .api
            .http
            .get(m.url(&path))
            .bearer_auth(m.admin_token)
            .send()
            .await
            .expect("GET /v1/users");
        let status = r.status();
        let header = |name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().expect("ASCII header").to_owned())
        };
        let (total, next, link) = (
            header("x-total-count"),
            header("x-next-cursor"),
            header("link"),
        );
        let body: serde_json::Value = r.json().await.expect("JSON");
        (status, total, next, link, body)
    };

    // No parameters: everyone (under the default 50), no next page.
    let (st, total, next, link, body) = get("/v1/users".into()).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(total.as_deref(), Some("12"));
    assert_eq!((next, link), (None, None));
    assert_eq!(body.as_array().map(Vec::len), Some(12));
    assert!(body[0]["subscription_url"].is_string(), "{body}");

    // `q=E_` (a literal `_`, any case: `pre_…`, not `prex…`), by name descending, 2 a page:
    // follow the links.
    let mut want: Vec<&String> = names.iter().filter(|n| n.contains("e_")).collect();
    want.sort_by(|a, b| b.cmp(a));
    let mut path = "/v1/users?q=E_&sort=-name&limit=2".to_owned();
    let mut seen = Vec::new();
    loop {
        let (st, total, next, link, body) = get(path.clone()).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(total.as_deref(), Some("6"));
        seen.extend(
            body.as_array()
                .expect("array")
                .iter()
                .map(|u| u["name"].as_str().unwrap_or_default().to_owned()),
        );
        let Some(next) = next else {
            assert_eq!(link, None);
            break;
        };
        let link = link.expect("a link with the cursor");
        assert_eq!(
            link,
            format!("</v1/users?limit=2&q=E%5F&sort=%2Dname&after={next}>; rel=\"next\"")
        );
        path = link
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .map(|(p, _)| p.to_owned())
            .expect("link target");
        assert!(seen.len() <= 12, "the walk ends");
    }
    assert_eq!(seen.iter().collect::<Vec<_>>(), want);

    // Status filter: all enabled.
    let (st, total, _, _, _) = get("/v1/users?status=disabled".into()).await;
    assert_eq!((st, total.as_deref()), (StatusCode::OK, Some("0")));

    // Bad parameters: 400 naming the parameter, as JSON.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
        ("sort=email", "sort"),
        ("status=asleep", "status"),
        ("after=%21%21", "after"),
        ("colour=red", "colour"),
        ("q=a&q=b", "q"),
    ] {
        let (st, total, _, _, body) = get(format!("/v1/users?{query}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
        assert_eq!(total, None);
    }
}
