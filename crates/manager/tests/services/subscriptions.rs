//! Subscription secrets and URLs: the secret's form, rotation, lookup, the URL base setting,
//! and the migration that gives existing users a secret.

use super::{field, open};
use manager::{NewUser, PublicPanel, ServiceError, SettingsPatch};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, Statement};

fn new_user(name: &str) -> NewUser {
    NewUser {
        name: name.into(),
        quota_bytes: 0,
        enabled: true,
        ..Default::default()
    }
}

fn url_safe(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[tokio::test]
async fn secrets_rotate_and_the_old_one_is_unknown_at_once() {
    let t = open().await;
    let (users, subs) = (&t.manager.services.users, &t.manager.services.subscriptions);
    let alice = users.create(new_user("alice")).await.expect("alice");
    let bob = users.create(new_user("bob")).await.expect("bob");
    assert_eq!(alice.sub_secret.len(), 32);
    assert!(url_safe(&alice.sub_secret), "{}", alice.sub_secret);
    assert_ne!(alice.sub_secret, bob.sub_secret);
    // The secret never appears in the user's JSON.
    let json = serde_json::to_string(&alice).expect("json");
    assert!(!json.contains(&alice.sub_secret), "{json}");
    assert!(!json.contains(&alice.sub_secret_hash), "{json}");

    let found = subs.find(&alice.sub_secret).await.expect("find");
    assert_eq!(found.map(|s| s.user.id), Some(alice.id));
    // A secret that is right but for its last character is unknown, as is an empty one.
    let mut near = alice.sub_secret.clone();
    let last = if near.ends_with('A') { "B" } else { "A" };
    near.replace_range(31.., last);
    assert!(subs.find(&near).await.expect("find").is_none());
    assert!(subs.find("").await.expect("find").is_none());

    let rotated = subs.rotate(alice.id).await.expect("rotate");
    assert_ne!(rotated.sub_secret, alice.sub_secret);
    assert_eq!(rotated.sub_secret.len(), 32);
    assert!(subs.find(&alice.sub_secret).await.expect("find").is_none());
    let found = subs.find(&rotated.sub_secret).await.expect("find");
    assert_eq!(found.map(|s| s.user.id), Some(alice.id));
    // Bob's secret did not change.
    let found = subs.find(&bob.sub_secret).await.expect("find");
    assert_eq!(found.map(|s| s.user.id), Some(bob.id));
    assert!(matches!(
        subs.rotate(9_999).await,
        Err(ServiceError::NotFound(_))
    ));
}

#[tokio::test]
async fn the_url_base_defaults_to_the_panel_and_can_be_set() {
    let t = open().await;
    let s = &t.manager.services;
    let alice = s.users.create(new_user("alice")).await.expect("alice");
    s.settings
        .update(SettingsPatch {
            host: Some("panel.example.org".into()),
            ..Default::default()
        })
        .await
        .expect("host");
    s.subscriptions.set_public_panel(PublicPanel {
        https: true,
        port: 8443,
    });
    assert_eq!(
        s.subscriptions.url(&alice).await.expect("url"),
        format!("https://panel.example.org:8443/sub/{}", alice.sub_secret)
    );
    s.subscriptions.set_public_panel(PublicPanel {
        https: false,
        port: 8080,
    });
    assert_eq!(
        s.subscriptions.url(&alice).await.expect("url"),
        format!("http://panel.example.org:8080/sub/{}", alice.sub_secret)
    );

    let saved = s
        .settings
        .update(SettingsPatch {
            subscription_url_base: Some(" https://sub.example.com/arch/ ".into()),
            ..Default::default()
        })
        .await
        .expect("base");
    assert_eq!(saved.subscription_url_base, "https://sub.example.com/arch");
    assert_eq!(
        s.subscriptions.url(&alice).await.expect("url"),
        format!("https://sub.example.com/arch/sub/{}", alice.sub_secret)
    );
    let found = s
        .subscriptions
        .find(&alice.sub_secret)
        .await
        .expect("find")
        .expect("known");
    assert_eq!(
        found.page_url,
        format!("https://sub.example.com/arch/u/{}", alice.sub_secret)
    );

    for bad in [
        "ftp://sub.example.com",
        "sub.example.com",
        "https://sub.example.com/?a=1",
        "https://sub.example.com/#x",
        "https://user:pw@sub.example.com",
        "https://",
    ] {
        let err = s
            .settings
            .update(SettingsPatch {
                subscription_url_base: Some(bad.into()),
                ..Default::default()
            })
            .await
            .expect_err(bad);
        assert_eq!(field(&err), "subscription_url_base", "{bad}");
        assert!(matches!(err, ServiceError::Invalid { .. }), "{bad}");
        assert_eq!(
            s.settings.get().await.expect("get").subscription_url_base,
            "https://sub.example.com/arch",
            "{bad} changed nothing"
        );
    }
    // "" goes back to the default.
    s.settings
        .update(SettingsPatch {
            subscription_url_base: Some(String::new()),
            ..Default::default()
        })
        .await
        .expect("reset");
    assert_eq!(
        s.subscriptions.url(&alice).await.expect("url"),
        format!("http://panel.example.org:8080/sub/{}", alice.sub_secret)
    );
}

#[tokio::test]
async fn the_migration_gives_existing_users_a_secret_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::connect(manager::db::default_sqlite_url(dir.path()))
        .await
        .expect("connect");
    // The schema just before the migration that adds the secrets.
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261201_000002_subscriptions")
        .expect("the subscriptions migration");
    Migrator::up(&db, Some(u32::try_from(before).expect("count")))
        .await
        .expect("older schema");
    for name in ["alice", "bob"] {
        db.execute_unprepared(&format!(
            "INSERT INTO users (name, password, method, enabled, quota_bytes, usage_bytes, \
             created_at, updated_at) VALUES ('{name}', 'pw', 'chacha20-ietf-poly1305', true, 0, 0, 1, 1)"
        ))
        .await
        .expect("insert");
    }
    Migrator::up(&db, None).await.expect("migrate");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT sub_secret, sub_secret_hash FROM users ORDER BY id",
        ))
        .await
        .expect("select");
    let secrets: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "sub_secret").expect("secret"),
                r.try_get::<String>("", "sub_secret_hash").expect("hash"),
            )
        })
        .collect();
    assert_eq!(secrets.len(), 2);
    for (secret, hash) in &secrets {
        assert_eq!(secret.len(), 32);
        assert!(url_safe(secret), "{secret}");
        assert_eq!(hash, &manager::util::sha256_hex(secret));
    }
    assert_ne!(secrets[0].0, secrets[1].0);
}
