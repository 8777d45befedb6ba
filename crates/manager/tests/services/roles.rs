//! Roles and the audit log at the service layer: what each role may change (every change a
//! viewer attempts is refused, changes nothing and is recorded as refused), the last owner, and
//! what the log records — who, from where, before → after — without any secret in it.

use super::open;
use manager::services::audit::{acting, Actor, HIDDEN};
use manager::{
    AdminPatch, AuditQuery, NewAdmin, NewNode, NewUser, NodePatch, Role, ServiceError,
    SettingsPatch, UserPatch,
};
use std::net::IpAddr;

const PASSWORD: &str = "correct horse battery";

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().expect("ip"))
}

fn forbidden<T: std::fmt::Debug>(what: &str, r: Result<T, ServiceError>) {
    assert!(
        matches!(r, Err(ServiceError::Forbidden(_))),
        "{what}: expected Forbidden, got {r:?}"
    );
}

/// Every audit entry, newest first.
async fn all_entries(t: &super::TestDb) -> Vec<manager::AuditEntry> {
    t.manager
        .services
        .audit
        .page(AuditQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .expect("audit page")
        .entries
}

#[tokio::test]
async fn a_viewer_changes_nothing_and_every_attempt_is_recorded() {
    let t = open().await;
    let s = &t.manager.services;
    // Made by the manager itself (no request): a user, a plain-HTTP node (not reached), a token.
    let alice = s
        .users
        .create(NewUser {
            name: "alice".into(),
            ..Default::default()
        })
        .await
        .expect("user");
    let node = s
        .nodes
        .create(NewNode {
            host: "127.0.0.1".into(),
            http_port: 1,
            insecure_http: true,
            ..Default::default()
        })
        .await
        .expect("node");
    let token = s.auth.create_token("ci", Role::Owner).await.expect("token");
    let admin = s.auth.create_admin("root", PASSWORD).await.expect("admin");
    let users_before = s.users.list().await.expect("users");
    let nodes_before = s.nodes.list().await.expect("nodes");
    let settings_before = s.settings.get().await.expect("settings");
    let entries_before = all_entries(&t).await.len();

    let viewer = Actor::token(99, "dashboard-screen", Role::Viewer, ip("192.0.2.7"));
    let attempts = acting(viewer, async {
        forbidden(
            "user.create",
            s.users
                .create(NewUser {
                    name: "mallory".into(),
                    ..Default::default()
                })
                .await,
        );
        forbidden(
            "user.update",
            s.users
                .update(
                    alice.id,
                    UserPatch {
                        quota_bytes: Some(1),
                        ..Default::default()
                    },
                )
                .await,
        );
        forbidden("user.delete", s.users.delete(alice.id).await);
        forbidden("user.delete many", s.users.delete_many(&[alice.id]).await);
        forbidden(
            "user.disable",
            s.users.set_enabled(&[alice.id], false).await,
        );
        forbidden("user.enable", s.users.set_enabled(&[alice.id], true).await);
        forbidden("user.reset-usage", s.users.reset_usage(&[alice.id]).await);
        forbidden(
            "user.rotate-subscription",
            s.subscriptions.rotate(alice.id).await,
        );
        forbidden(
            "node.create",
            s.nodes
                .create(NewNode {
                    host: "127.0.0.1".into(),
                    http_port: 2,
                    insecure_http: true,
                    ..Default::default()
                })
                .await,
        );
        forbidden(
            "node.update",
            s.nodes
                .update(
                    node.id,
                    NodePatch {
                        name: Some("renamed".into()),
                        ..Default::default()
                    },
                )
                .await,
        );
        forbidden("node.rotate-keys", s.nodes.rotate_keys(node.id).await);
        forbidden("node.reset-usage", s.nodes.reset_usage(node.id).await);
        forbidden("node.restart", s.nodes.restart(node.id).await);
        forbidden("node.repin", s.nodes.repin(node.id, None).await);
        forbidden("node.rotate-token", s.nodes.rotate_token(node.id).await);
        forbidden(
            "node.check",
            s.nodes.check("127.0.0.1", 1, "token", true).await,
        );
        forbidden("node.delete", s.nodes.delete(node.id).await);
        forbidden(
            "settings.update",
            s.settings
                .update(SettingsPatch {
                    host: Some("evil.example".into()),
                    ..Default::default()
                })
                .await,
        );
        forbidden(
            "token.create",
            s.auth.create_token("mine", Role::Owner).await,
        );
        forbidden("token.revoke", s.auth.revoke_token(token.token.id).await);
        forbidden(
            "admin.create",
            s.auth
                .add_admin(NewAdmin {
                    username: "mallory".into(),
                    password: PASSWORD.into(),
                    role: Role::Owner,
                })
                .await,
        );
        forbidden(
            "admin.update",
            s.auth
                .update_admin(
                    admin.id,
                    AdminPatch {
                        role: Some(Role::Viewer),
                        password: None,
                    },
                )
                .await,
        );
        forbidden("admin.delete", s.auth.delete_admin(admin.id).await);
        23
    })
    .await;

    // Nothing changed.
    assert_eq!(s.users.list().await.expect("users"), users_before);
    assert_eq!(s.nodes.list().await.expect("nodes"), nodes_before);
    assert_eq!(s.settings.get().await.expect("settings"), settings_before);
    assert_eq!(s.auth.list_tokens().await.expect("tokens").len(), 1);
    assert_eq!(s.auth.list_admins().await.expect("admins").len(), 1);
    // Every attempt is in the log, as refused, under the viewer's name and address.
    let entries = all_entries(&t).await;
    assert_eq!(entries.len(), entries_before + attempts);
    for e in &entries[..attempts] {
        assert_eq!(e.outcome, "refused", "{e:?}");
        assert_eq!(e.actor_kind, "token");
        assert_eq!(e.actor_name, "dashboard-screen");
        assert_eq!(e.address.as_deref(), Some("192.0.2.7"));
    }
    // Reading is open to a viewer.
    let viewer = Actor::token(99, "dashboard-screen", Role::Viewer, None);
    acting(viewer, async {
        assert_eq!(s.users.list().await.expect("read").len(), 1);
        assert!(s.audit.page(AuditQuery::default()).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn an_operator_runs_users_and_nodes_but_not_settings_tokens_or_admins() {
    let t = open().await;
    let s = &t.manager.services;
    let operator = Actor::admin(5, "olga", Role::Operator, ip("198.51.100.4"));
    acting(operator, async {
        let u = s
            .users
            .create(NewUser {
                name: "bob".into(),
                ..Default::default()
            })
            .await
            .expect("an operator creates users");
        s.users
            .set_enabled(&[u.id], false)
            .await
            .expect("and disables them");
        forbidden(
            "settings",
            s.settings
                .update(SettingsPatch {
                    host: Some("arch.example".into()),
                    ..Default::default()
                })
                .await,
        );
        forbidden("token", s.auth.create_token("x", Role::Viewer).await);
        forbidden(
            "admin",
            s.auth
                .add_admin(NewAdmin {
                    username: "eve".into(),
                    password: PASSWORD.into(),
                    role: Role::Owner,
                })
                .await,
        );
    })
    .await;
    let entries = all_entries(&t).await;
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("admin.create", "refused"),
            ("token.create", "refused"),
            ("settings.update", "refused"),
            ("user.disable", "ok"),
            ("user.create", "ok"),
        ]
    );
    let disable = &entries[3];
    assert_eq!(disable.actor_name, "olga");
    assert_eq!(disable.address.as_deref(), Some("198.51.100.4"));
    assert_eq!(disable.object_kind.as_deref(), Some("user"));
    assert_eq!(disable.object_name.as_deref(), Some("bob"));
    assert_eq!(
        disable.changes,
        serde_json::json!({"enabled": [true, false], "disabled_reason": [null, "manual"]})
    );
}

#[tokio::test]
async fn the_log_records_before_and_after_and_never_a_secret() {
    let t = open().await;
    let s = &t.manager.services;
    let owner = Actor::admin(1, "root", Role::Owner, ip("203.0.113.9"));
    let (user, node, token) = acting(owner, async {
        let user = s
            .users
            .create(NewUser {
                name: "carol".into(),
                quota_bytes: 1000,
                ..Default::default()
            })
            .await
            .expect("user");
        s.users
            .update(
                user.id,
                UserPatch {
                    quota_bytes: Some(5000),
                    ..Default::default()
                },
            )
            .await
            .expect("update");
        s.subscriptions.rotate(user.id).await.expect("rotate");
        let node = s
            .nodes
            .create(NewNode {
                host: "127.0.0.1".into(),
                http_port: 3,
                insecure_http: true,
                http_token: Some("node-token-that-must-not-leak-0001".into()),
                ..Default::default()
            })
            .await
            .expect("node");
        s.nodes
            .update(
                node.id,
                NodePatch {
                    http_token: Some("node-token-that-must-not-leak-0002".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("node update");
        s.nodes.rotate_keys(node.id).await.expect("rotate keys");
        s.settings
            .update(SettingsPatch {
                proxy_url: Some("socks5://proxyuser:proxy-secret-pw@127.0.0.1:1080".into()),
                ..Default::default()
            })
            .await
            .expect("settings");
        let token = s
            .auth
            .create_token("ci", Role::Viewer)
            .await
            .expect("token");
        s.auth
            .add_admin(NewAdmin {
                username: "vera".into(),
                password: "admin-password-never-logged".into(),
                role: Role::Viewer,
            })
            .await
            .expect("admin");
        (user, node, token)
    })
    .await;
    let entries = all_entries(&t).await;
    let text = serde_json::to_string(&entries).expect("json");
    let node = s.nodes.get(node.id).await.expect("node");
    let user = s.users.get(user.id).await.expect("user");
    for secret in [
        user.password.as_str(),
        user.sub_secret.as_str(),
        "node-token-that-must-not-leak-0001",
        "node-token-that-must-not-leak-0002",
        node.relay_key.as_str(),
        node.internal_key.as_str(),
        "proxy-secret-pw",
        "proxyuser",
        token.secret.as_str(),
        "admin-password-never-logged",
    ] {
        assert!(!text.contains(secret), "a secret reached the audit log");
    }
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("no {action} entry"))
    };
    assert_eq!(
        find("user.update").changes,
        serde_json::json!({"quota_bytes": [1000, 5000]})
    );
    assert_eq!(
        find("user.rotate-subscription").changes,
        serde_json::json!({"subscription_url": HIDDEN})
    );
    assert_eq!(
        find("node.update").changes,
        serde_json::json!({"http_token": HIDDEN})
    );
    let keys = &find("node.rotate-keys").changes;
    assert_eq!(keys["relay_key"], HIDDEN);
    assert_eq!(keys["internal_key"], HIDDEN);
    assert_eq!(
        find("settings.update").changes,
        serde_json::json!({"proxy_url": ["", format!("socks5://{HIDDEN}@127.0.0.1:1080")]})
    );
    assert_eq!(
        find("token.create").changes,
        serde_json::json!({"role": [null, "viewer"]})
    );
    assert_eq!(
        find("admin.create").changes,
        serde_json::json!({"role": [null, "viewer"], "password": HIDDEN})
    );
    for e in &entries {
        assert_eq!(e.actor_name, "root");
        assert_eq!(e.address.as_deref(), Some("203.0.113.9"));
    }
    // Filters: by area, by exact action, by object; paging by id.
    let page = |q: AuditQuery| async move { s.audit.page(q).await.expect("page") };
    let users_only = page(AuditQuery {
        action: Some("user.".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(users_only.entries.len(), 3);
    let on_node = page(AuditQuery {
        object: Some(("node".into(), Some(node.id))),
        ..Default::default()
    })
    .await;
    assert_eq!(on_node.entries.len(), 3);
    let first = page(AuditQuery {
        limit: 4,
        ..Default::default()
    })
    .await;
    assert_eq!(first.entries.len(), 4);
    let rest = page(AuditQuery {
        limit: 500,
        before: first.next,
        ..Default::default()
    })
    .await;
    assert_eq!(rest.next, None);
    assert_eq!(first.entries.len() + rest.entries.len(), entries.len());
    assert!(rest.entries[0].id < first.entries[3].id);
}

#[tokio::test]
async fn there_is_always_an_owner_and_sign_ins_are_recorded() {
    let t = open().await;
    let auth = &t.manager.services.auth;
    let root = auth.create_admin("root", PASSWORD).await.expect("root");
    assert_eq!(root.role, Role::Owner);
    let demote = auth
        .update_admin(
            root.id,
            AdminPatch {
                role: Some(Role::Operator),
                password: None,
            },
        )
        .await;
    assert!(matches!(&demote, Err(ServiceError::Conflict { field, .. }) if field == "role"));
    assert!(matches!(
        auth.delete_admin(root.id).await,
        Err(ServiceError::Conflict { .. })
    ));
    // With a second owner the first may step down; a changed password ends the sessions.
    let second = auth
        .add_admin(NewAdmin {
            username: "second".into(),
            password: PASSWORD.into(),
            role: Role::Owner,
        })
        .await
        .expect("second owner");
    let session = auth
        .login("root", PASSWORD, ip("192.0.2.1"))
        .await
        .expect("sign in");
    auth.update_admin(
        root.id,
        AdminPatch {
            role: Some(Role::Viewer),
            password: Some("another long password".into()),
        },
    )
    .await
    .expect("step down");
    assert_eq!(
        auth.admin_for_session(&session.token).await.expect("read"),
        None
    );
    let root_now = auth
        .login("root", "another long password", ip("192.0.2.1"))
        .await
        .expect("sign in again");
    let me = auth
        .admin_for_session(&root_now.token)
        .await
        .expect("read")
        .expect("signed in");
    assert_eq!(me.role, Role::Viewer);
    assert!(matches!(
        auth.delete_admin(second.id).await,
        Err(ServiceError::Conflict { .. })
    ));
    // Failed sign-ins: the known name, or nothing of what was typed.
    let _ = auth
        .login("root", "wrong password!", ip("192.0.2.99"))
        .await;
    let _ = auth
        .login("my password typed here", "x", ip("192.0.2.98"))
        .await;
    let entries = all_entries(&t).await;
    let sign_ins: Vec<(String, String, Option<String>)> = entries
        .iter()
        .filter(|e| e.action == "sign-in")
        .map(|e| (e.actor_name.clone(), e.outcome.clone(), e.address.clone()))
        .collect();
    assert_eq!(
        sign_ins,
        [
            (
                "(unknown name)".to_owned(),
                "failed".to_owned(),
                Some("192.0.2.98".to_owned())
            ),
            (
                "root".to_owned(),
                "failed".to_owned(),
                Some("192.0.2.99".to_owned())
            ),
            (
                "root".to_owned(),
                "ok".to_owned(),
                Some("192.0.2.1".to_owned())
            ),
            (
                "root".to_owned(),
                "ok".to_owned(),
                Some("192.0.2.1".to_owned())
            ),
        ]
    );
    let text = serde_json::to_string(&entries).expect("json");
    assert!(!text.contains("my password typed here"));
}

/// Two owners demoting (or removing) each other at the same moment: exactly one succeeds, so one
/// owner is always left. On PostgreSQL this holds only because the owner rows are locked while
/// they are counted; without the lock both transactions count two owners and both go through.
#[tokio::test]
async fn two_owners_stepping_down_at_once_leave_one_owner() {
    let t = open().await;
    let auth = &t.manager.services.auth;
    let first = auth.create_admin("first", PASSWORD).await.expect("first");
    let demote = |id| {
        auth.update_admin(
            id,
            AdminPatch {
                role: Some(Role::Viewer),
                password: None,
            },
        )
    };
    let promote = |id| {
        auth.update_admin(
            id,
            AdminPatch {
                role: Some(Role::Owner),
                password: None,
            },
        )
    };
    for round in 0..20 {
        let second = auth
            .add_admin(NewAdmin {
                username: format!("second-{round}"),
                password: PASSWORD.into(),
                role: Role::Owner,
            })
            .await
            .expect("second owner");
        promote(first.id).await.expect("first is an owner again");
        let (a, b) = if round % 2 == 0 {
            tokio::join!(demote(first.id), demote(second.id))
        } else {
            let (a, b) = tokio::join!(demote(first.id), auth.delete_admin(second.id));
            (a, b.map(|()| first.clone()))
        };
        let refused = [&a, &b]
            .iter()
            .filter(|r| matches!(r, Err(ServiceError::Conflict { field, .. }) if field == "role"))
            .count();
        assert_eq!(
            (a.is_ok() as u8 + b.is_ok() as u8, refused),
            (1, 1),
            "round {round}: {a:?} / {b:?}"
        );
        let owners: Vec<String> = auth
            .list_admins()
            .await
            .expect("list")
            .into_iter()
            .filter(|x| x.role == Role::Owner)
            .map(|x| x.username)
            .collect();
        assert_eq!(owners.len(), 1, "round {round}: owners {owners:?}");
        if a.is_ok() {
            // The first stepped down: make it the owner again and retire the second.
            promote(first.id).await.expect("promote first");
        }
        if auth
            .list_admins()
            .await
            .expect("list")
            .iter()
            .any(|x| x.id == second.id)
        {
            auth.delete_admin(second.id).await.expect("retire second");
        }
    }
}
