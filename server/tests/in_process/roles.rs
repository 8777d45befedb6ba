//! Roles end to end: a viewer — an API token over REST, an administrator through the panel's
//! server functions — can read everything and change nothing. The lists of routes and server
//! functions tried are checked against what the manager really serves (the REST routes in
//! `server/src/api.rs`, the registered server functions), so a new endpoint cannot slip past
//! this test unclassified. Also: the audit log over REST (`GET /v1/audit`) with its filters and
//! paging, and roles of tokens created over REST.

use crate::support::{client, TestApp};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const PASSWORD: &str = "correct horse battery";

/// The body of a successful call.
fn ok((status, body): (StatusCode, Value)) -> Value {
    assert!(status.is_success(), "{status}: {body}");
    body
}

async fn ok_post(api: &testkit::procs::Api, path: &str, body: Value) -> Value {
    ok(api.post(path, &body).await)
}

/// Every (method, path) the REST router declares, read from its source.
fn rest_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../../src/api.rs");
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        // The call's text up to its closing parenthesis.
        let (mut depth, mut end) = (1, 0);
        for (j, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = j;
                break;
            }
        }
        let call = &rest[..end];
        let path = call.split('"').nth(1).expect("a path literal").to_owned();
        for method in ["get", "post", "put", "patch", "delete"] {
            let plain = call.match_indices(&format!("{method}(")).any(|(k, _)| {
                k == 0 || !call[..k].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if plain {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn a_viewer_token_reads_everything_and_changes_nothing_over_rest() {
    let app = TestApp::builder().nodes(1).start().await;
    let m = &app.manager;
    let node = app.register(0).await;
    let node_id = node["id"].as_i64().expect("node id");
    let user = ok_post(&m.api, "/v1/users", json!({"name": "alice"})).await;
    let user_id = user["id"].as_i64().expect("user id");
    let viewer = ok_post(
        &m.api,
        "/v1/tokens",
        json!({"name": "wallboard", "role": "viewer"}),
    )
    .await;
    assert_eq!(viewer["role"], "viewer");
    let secret = viewer["secret"].as_str().expect("secret").to_owned();
    let token_id = viewer["id"].as_i64().expect("token id");
    let admin = m
        .services
        .auth
        .create_admin("root", PASSWORD)
        .await
        .expect("admin");
    let http = client();
    let call = |method: Method, path: String, body: Option<Value>| {
        let mut req = http.request(method, m.url(&path)).bearer_auth(&secret);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req
    };
    let snapshot = || async {
        let nodes: Vec<Value> = ok(m.api.get("/v1/nodes").await)
            .as_array()
            .expect("nodes")
            .clone();
        let stable: Vec<Value> = nodes
            .iter()
            .map(|n| {
                json!([
                    n["id"],
                    n["name"],
                    n["host"],
                    n["http_port"],
                    n["usage_multiplier"],
                    n["tls_fingerprint"],
                    n["relay_port"],
                    n["internal_port"]
                ])
            })
            .collect();
        json!({
            "users": ok(m.api.get("/v1/users").await),
            "nodes": stable,
            "settings": ok(m.api.get("/v1/settings").await),
            "tokens": ok(m.api.get("/v1/tokens").await).as_array().expect("tokens").iter().map(|t| t["id"].clone()).collect::<Vec<_>>(),
            "admins": ok(m.api.get("/v1/admins").await),
        })
    };
    let before = snapshot().await;

    let mut changes = 0;
    for (method, path) in rest_routes() {
        let concrete = path
            .replace("/v1/users/{id}", &format!("/v1/users/{user_id}"))
            .replace("/v1/nodes/{id}", &format!("/v1/nodes/{node_id}"))
            .replace("/v1/tokens/{id}", &format!("/v1/tokens/{token_id}"))
            .replace("/v1/admins/{id}", &format!("/v1/admins/{}", admin.id));
        assert!(!concrete.contains('{'), "no id for {path}");
        if method == "GET" {
            let res = call(Method::GET, concrete.clone(), None)
                .send()
                .await
                .expect("GET");
            assert_eq!(res.status(), StatusCode::OK, "a viewer reads {concrete}");
            continue;
        }
        // A body the route accepts, so what answers is the role check and not the parser.
        let body = match (method.as_str(), path.as_str()) {
            ("POST", "/v1/users") => Some(json!({"name": "mallory"})),
            ("POST", "/v1/nodes") => {
                Some(json!({"host": "127.0.0.1", "http_port": 9, "insecure_http": true}))
            }
            ("POST", p) if p.starts_with("/v1/users/") && !p.contains("{id}") => {
                Some(json!({"ids": [user_id]}))
            }
            ("POST", "/v1/tokens") => Some(json!({"name": "mine", "role": "owner"})),
            ("POST", "/v1/admins") => {
                Some(json!({"username": "mallory", "password": PASSWORD, "role": "owner"}))
            }
            ("PATCH", "/v1/users/{id}") => Some(json!({"quota_bytes": 1})),
            ("PATCH", "/v1/nodes/{id}") => Some(json!({"name": "taken-over"})),
            ("PATCH", "/v1/admins/{id}") => Some(json!({"role": "viewer"})),
            ("PUT", "/v1/settings") => Some(json!({"host": "evil.example"})),
            _ => None,
        };
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let res = call(method.clone(), concrete.clone(), body)
            .send()
            .await
            .expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {concrete} answered {status}: {text}"
        );
        assert!(text.contains("not allowed"), "{text}");
        changes += 1;
    }
    assert!(changes >= 20, "only {changes} changing routes found");
    assert_eq!(snapshot().await, before, "a viewer changed something");

    // Each refusal is in the audit log under the token's name, newest first.
    let res = http
        .get(m.url("/v1/audit?actor=wallboard&limit=500"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("audit");
    assert_eq!(res.status(), StatusCode::OK);
    let entries: Vec<Value> = res.json().await.expect("json");
    assert_eq!(entries.len(), changes);
    assert!(entries.iter().all(|e| e["outcome"] == "refused"
        && e["actor_kind"] == "token"
        && e["address"] == "127.0.0.1"));
    // Paging: two at a time walks the same entries.
    let mut seen = Vec::new();
    let mut url = "/v1/audit?actor=wallboard&limit=2".to_owned();
    for _ in 0..100 {
        let res = http
            .get(m.url(&url))
            .bearer_auth(&secret)
            .send()
            .await
            .expect("page");
        let next = res
            .headers()
            .get(header::LINK)
            .map(|v| v.to_str().expect("ascii").to_owned());
        let page: Vec<Value> = res.json().await.expect("json");
        seen.extend(page.into_iter().map(|e| e["id"].clone()));
        match next {
            Some(link) => {
                url = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .expect("link target")
                    .to_owned()
            }
            None => break,
        }
    }
    let all: Vec<Value> = entries.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(seen, all);
    // A bad filter is a 400 naming it.
    let res = http
        .get(m.url("/v1/audit?limit=0"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("audit");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["field"], "limit");
}

/// Server functions that only read (or sign in and out, or serve an end user's profile by its
/// secret): open to every role.
const READS: [&str; 18] = [
    "profile",
    "time_zones",
    "list_admins",
    "load_audit",
    "needs_setup",
    "whoami",
    "login",
    "setup",
    "logout",
    "load_dashboard",
    "list_nodes",
    "load_node",
    "get_settings",
    "list_tokens",
    "load_usage",
    "list_users",
    "user_detail",
    "user_subscription",
];

#[tokio::test]
async fn a_viewer_administrator_changes_nothing_through_the_panel() {
    let app = TestApp::builder().nodes(1).start().await;
    let m = &app.manager;
    let node = app.register(0).await;
    let node_id = node["id"].as_i64().expect("node id");
    let user = ok_post(&m.api, "/v1/users", json!({"name": "alice"})).await;
    let user_id = user["id"].as_i64().expect("user id");
    let token = ok_post(&m.api, "/v1/tokens", json!({"name": "ci"})).await;
    let token_id = token["id"].as_i64().expect("token id");
    let auth = &m.services.auth;
    let root = auth.create_admin("root", PASSWORD).await.expect("owner");
    auth.add_admin(manager::NewAdmin {
        username: "vera".into(),
        password: PASSWORD.into(),
        role: manager::Role::Viewer,
    })
    .await
    .expect("viewer");
    let session = auth.login("vera", PASSWORD, None).await.expect("sign in");
    let cookie = format!("{}={}", app::ssr::SESSION_COOKIE, session.token);
    let http = client();
    let settings = ok(m.api.get("/v1/settings").await);
    let settings_view = json!({
        "host": settings["host"], "ss_direct_port": settings["ss_direct_port"],
        "ss_relay_port": settings["ss_relay_port"], "ss_reverse_port": settings["ss_reverse_port"],
        "ss_remote_port": settings["ss_remote_port"], "proxy_url": "", "traffic_ratio": 1.0,
        "allowed_private_networks": [], "subscription_url_base": "", "time_zone": "UTC",
    });
    let node_form = json!({"name": "", "host": "127.0.0.1", "http_port": 9,
        "http_token": "0123456789abcdef0123456789abcdef", "insecure_http": true});
    // Every server function that changes something, with arguments it accepts.
    let changes: Vec<(&str, Value)> = vec![
        (
            "add_admin",
            json!({"username": "mallory", "password": PASSWORD, "confirm": PASSWORD, "role": "owner"}),
        ),
        ("set_admin_role", json!({"id": root.id, "role": "viewer"})),
        ("delete_admin", json!({"id": root.id})),
        ("check_node", json!({"form": node_form})),
        ("add_node", json!({"form": node_form})),
        (
            "update_node",
            json!({"id": node_id, "form": {"name": "taken-over", "host": "127.0.0.1",
            "http_port": app.nodes[0].port(), "http_token": ""}}),
        ),
        ("restart_node", json!({"id": node_id})),
        ("reset_node_usage", json!({"id": node_id})),
        ("delete_node", json!({"id": node_id})),
        ("repin_node", json!({"id": node_id})),
        ("rotate_node_token", json!({"id": node_id})),
        ("update_settings", json!({"settings": settings_view})),
        ("create_token", json!({"name": "mine", "role": "owner"})),
        ("revoke_token", json!({"id": token_id})),
        (
            "create_user",
            json!({"form": {"name": "mallory", "quota_bytes": 0, "enabled": true}}),
        ),
        (
            "update_user",
            json!({"id": user_id, "edit": {"quota_bytes": 1, "enabled": true}}),
        ),
        (
            "update_user_access",
            json!({"id": user_id, "access": {"expire_at": null, "expire_after_first_use": null}}),
        ),
        (
            "update_user_reset",
            json!({"id": user_id, "strategy": "daily", "day": 1}),
        ),
        ("reset_user_usage", json!({"id": user_id})),
        ("reset_users_usage", json!({"ids": [user_id]})),
        (
            "set_users_enabled",
            json!({"ids": [user_id], "enabled": false}),
        ),
        ("delete_users", json!({"ids": [user_id]})),
        ("delete_user", json!({"id": user_id})),
        ("rotate_subscription", json!({"id": user_id})),
    ];
    // The lists cover every registered server function.
    let registered: BTreeSet<String> = server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.trim_start_matches("/api/").to_owned())
        .collect();
    let classified: BTreeSet<String> = READS
        .iter()
        .map(|s| (*s).to_owned())
        .chain(changes.iter().map(|(name, _)| (*name).to_owned()))
        .collect();
    assert_eq!(
        registered, classified,
        "a server function is not classified here"
    );

    let state = || async {
        json!([
            ok(m.api.get("/v1/users").await),
            ok(m.api.get("/v1/settings").await),
            ok(m.api.get("/v1/tokens").await)
                .as_array()
                .expect("tokens")
                .len(),
            ok(m.api.get("/v1/admins").await),
            ok(m.api.get(&format!("/v1/nodes/{node_id}")).await)["name"],
        ])
    };
    let before = state().await;
    for (name, body) in &changes {
        let res = http
            .post(m.url(&format!("/api/{name}")))
            .header(header::COOKIE, &cookie)
            .json(body)
            .send()
            .await
            .expect("server fn");
        let status = res.status();
        let text = res.text().await.expect("body");
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{name} answered {status}: {text}"
        );
        assert!(
            matches!(
                serde_json::from_str::<app::AppError>(&text),
                Ok(app::AppError::Forbidden(_))
            ),
            "{name}: {text}"
        );
    }
    let after = state().await;
    assert_eq!(
        after, before,
        "a viewer changed something through the panel"
    );
    // The viewer still reads.
    let res = http
        .post(m.url("/api/list_admins"))
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .send()
        .await
        .expect("read");
    assert_eq!(res.status(), StatusCode::OK);
    // Refusals are recorded under the administrator's name.
    let refused = m
        .services
        .audit
        .page(manager::AuditQuery {
            actor: Some("vera".into()),
            limit: 500,
            ..Default::default()
        })
        .await
        .expect("audit");
    // Every change refused, after the sign-in.
    let outcomes: Vec<(&str, &str)> = refused
        .entries
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(outcomes.len(), changes.len() + 1, "{outcomes:?}");
    assert_eq!(outcomes.last(), Some(&("sign-in", "ok")));
    assert!(outcomes[..changes.len()]
        .iter()
        .all(|(_, o)| *o == "refused"));
}
