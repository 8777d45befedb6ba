//! Sign-in hardening, the one-time setup token, API tokens, the node connection check and node
//! address spellings.

use super::{field, open};
use manager::node_client::ClientError;
use manager::{NewNode, NodePatch, ServiceError};
use std::net::IpAddr;

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().expect("ip"))
}

const PASSWORD: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn setup_token_creates_exactly_one_admin_under_concurrent_use() {
    let t = open().await;
    let auth = t.manager.services.auth.clone();
    let token = auth.setup_token().await.expect("token").expect("some");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (auth, token) = (auth.clone(), token.clone());
            tokio::spawn(async move {
                auth.setup(&token, &format!("admin{i}"), PASSWORD, None)
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => created += 1,
            Err(ServiceError::Unauthorized) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(created, 1);
    let admins = {
        use sea_orm::{EntityTrait, PaginatorTrait};
        manager::entity::admin::Entity::find()
            .count(&t.manager.db)
            .await
            .expect("count")
    };
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_real_admin_out() {
    let t = open().await;
    let auth = &t.manager.services.auth;
    auth.create_admin("root", PASSWORD).await.expect("root");
    auth.create_admin("ops", PASSWORD).await.expect("ops");
    // The admin signed in from home before.
    auth.login("root", PASSWORD, ip("192.0.2.10"))
        .await
        .expect("first sign-in");

    // One address hammering many accounts: that address is refused, nobody else is.
    for i in 0..20 {
        let r = auth
            .login(&format!("guess{i}"), "wrong password!", ip("203.0.113.66"))
            .await;
        assert!(matches!(r, Err(ServiceError::Unauthorized)), "attempt {i}");
    }
    assert!(matches!(
        auth.login("ops", PASSWORD, ip("203.0.113.66")).await,
        Err(ServiceError::RateLimited)
    ));
    auth.login("ops", PASSWORD, ip("198.51.100.7"))
        .await
        .expect("another address signs in");

    // One account hammered from many addresses: it backs off, other accounts do not...
    for i in 0..5 {
        let r = auth
            .login("root", "wrong password!", ip(&format!("203.0.113.{i}")))
            .await;
        assert!(matches!(r, Err(ServiceError::Unauthorized)), "attempt {i}");
    }
    assert!(matches!(
        auth.login("root", PASSWORD, ip("203.0.113.200")).await,
        Err(ServiceError::RateLimited)
    ));
    auth.login("ops", PASSWORD, ip("203.0.113.201"))
        .await
        .expect("other accounts are not slowed");
    // ...and the admin's own address, which signed in before, is not held back by it.
    auth.login("root", PASSWORD, ip("192.0.2.10"))
        .await
        .expect("the real admin signs in");
}

#[tokio::test]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let t = open().await;
    let auth = &t.manager.services.auth;
    let peer: IpAddr = "198.51.100.9".parse().expect("ip");
    assert_eq!(auth.client_ip(peer, ["203.0.113.1"]), peer);
    assert!(!auth.is_trusted_proxy(peer));
}

#[tokio::test]
async fn api_tokens_are_listed_and_revoked() {
    let t = open().await;
    let auth = &t.manager.services.auth;
    let created = auth
        .create_token("ci", rules::Role::Owner)
        .await
        .expect("create");
    assert_eq!(created.secret.len(), 64);
    assert_eq!(created.token.last_used_at, None);
    let listed = auth.list_tokens().await.expect("list");
    assert_eq!(listed, vec![created.token.clone()]);
    assert!(auth.check_bearer(&created.secret).await.expect("bearer"));
    let used = auth.list_tokens().await.expect("list");
    assert!(used[0]
        .last_used_at
        .is_some_and(|t| t >= created.token.created_at));
    auth.revoke_token(created.token.id).await.expect("revoke");
    assert!(!auth.check_bearer(&created.secret).await.expect("bearer"));
    assert!(auth.list_tokens().await.expect("list").is_empty());
    assert!(matches!(
        auth.revoke_token(created.token.id).await,
        Err(ServiceError::NotFound(_))
    ));
    let bad = auth.create_token("", rules::Role::Owner).await;
    assert!(matches!(&bad, Err(e @ ServiceError::Invalid { .. }) if field(e) == "name"));
}

#[tokio::test]
async fn a_session_that_cannot_be_read_is_a_database_error_not_a_signed_out_admin() {
    let t = open().await;
    let auth = &t.manager.services.auth;
    auth.create_admin("root", PASSWORD).await.expect("admin");
    let session = auth.login("root", PASSWORD, None).await.expect("login");
    assert!(auth
        .admin_for_session(&session.token)
        .await
        .expect("lookup")
        .is_some());
    t.manager.db.clone().close().await.expect("close");
    let err = auth
        .admin_for_session(&session.token)
        .await
        .expect_err("the database is closed");
    assert!(matches!(err, ServiceError::Db(_)), "{err:?}");
}

/// An HTTP server on 127.0.0.1 answering every request with `status` and `body` (HTML).
async fn answering(status: &'static str, body: &'static str) -> u16 {
    testkit::net::answering(status, &["Content-Type: text/html"], move || {
        body.as_bytes().to_vec()
    })
    .await
}

#[tokio::test]
async fn node_check_reports_a_short_verdict_and_never_the_answer() {
    let t = open().await;
    let nodes = &t.manager.services.nodes;
    let token = "0123456789abcdef0123";
    let secret = "<script>secret</script>";
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let cases = [
        (
            answering("500 Internal Server Error", secret).await,
            "node unreachable: the address answered HTTP 500",
        ),
        (
            answering("404 Not Found", secret).await,
            "node unreachable: the address answered HTTP 404",
        ),
        (
            answering("200 OK", secret).await,
            "node unreachable: the address answered, but not as an Arch node",
        ),
        (
            answering("401 Unauthorized", secret).await,
            "http_token: the node rejected this token",
        ),
        (closed, "node unreachable: connection refused or timed out"),
    ];
    for (port, want) in cases {
        let err = nodes
            .check("127.0.0.1", port, token, true)
            .await
            .expect_err("not a node");
        assert_eq!(err.to_string(), want, "port {port}");
        assert!(!format!("{err:?}").contains("secret"), "{err:?}");
    }
    // The cause stays typed up to the service error (the log gets it; the message above is
    // Arch's own).
    let err = nodes
        .check(
            "127.0.0.1",
            answering("500 Internal Server Error", secret).await,
            token,
            true,
        )
        .await
        .expect_err("not a node");
    assert!(
        matches!(
            &err,
            ServiceError::Unreachable(ClientError::Rejected { status: 500, .. })
        ),
        "{err:?}"
    );
    let err = nodes
        .check("127.0.0.1", closed, token, true)
        .await
        .expect_err("closed");
    assert!(
        matches!(&err, ServiceError::Unreachable(ClientError::Unreachable(e)) if e.is_connect()),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_same_node_cannot_be_added_under_another_spelling() {
    let t = open().await;
    let nodes = &t.manager.services.nodes;
    let add = |host: &str, port: u16| {
        nodes.create(NewNode {
            host: host.into(),
            http_port: port,
            http_token: None,
            ..Default::default()
        })
    };
    let v4 = add("127.0.0.1", 8081).await.expect("v4");
    assert_eq!(v4.host, "127.0.0.1");
    let v6 = add("[0:0:0:0:0:0:0:1]", 8081).await.expect("v6");
    assert_eq!(v6.host, "::1");
    let name = add("LOCALHOST.", 8081).await.expect("name");
    assert_eq!(name.host, "localhost");
    // (spelling, expected outcome): Some(field) of the error, None = created.
    let table: [(&str, u16, Result<(), &str>); 9] = [
        ("::ffff:127.0.0.1", 8081, Err("conflict")),
        ("[::ffff:7f00:1]", 8081, Err("conflict")),
        ("::1", 8081, Err("conflict")),
        ("0:0:0:0:0:0:0:1", 8081, Err("conflict")),
        ("localhost", 8081, Err("conflict")),
        ("Localhost", 8081, Err("conflict")),
        ("127.000.000.001", 8081, Err("invalid")),
        ("127.1", 8081, Err("invalid")),
        ("localhost", 8082, Ok(())),
    ];
    for (host, port, want) in table {
        let got = match add(host, port).await {
            Ok(_) => Ok(()),
            Err(e @ ServiceError::Conflict { .. }) if field(&e) == "host" => Err("conflict"),
            Err(e @ ServiceError::Invalid { .. }) if field(&e) == "host" => Err("invalid"),
            Err(e) => panic!("{host}:{port}: {e}"),
        };
        assert_eq!(got, want, "{host}:{port}");
    }
    // Editing a node onto another's address is refused the same way.
    let moved = nodes
        .update(
            v6.id,
            NodePatch {
                host: Some("127.0.0.1".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(&moved, Err(e @ ServiceError::Conflict { .. }) if field(e) == "host"));
    assert_eq!(nodes.list().await.expect("list").len(), 4);
}
