//! A user's limits: expiry (a fixed time, or a period from the first counted byte) and quota,
//! decided by one rule. Reaching a limit disables the user for it; lifting it (a later expiry, a
//! higher quota) enables the user at once; a manual disable is never undone by either.

use super::{field, open, stat};
use manager::{accounting, NewNode, NewUser, ServiceError, UserPatch};
use rules::DisableReason;

const DAY: i64 = 86_400_000;

fn now() -> i64 {
    manager::util::now_ms()
}

#[tokio::test]
async fn expiry_disables_and_a_later_one_enables_again() {
    let t = open().await;
    let users = &t.manager.services.users;
    let new = |name: &str, expire_at: Option<i64>| NewUser {
        name: name.into(),
        expire_at,
        ..Default::default()
    };
    // Created already expired: disabled for it from the start.
    let old = users
        .create(new("old", Some(now() - 1)))
        .await
        .expect("old");
    assert!(!old.enabled);
    assert_eq!(old.disabled_reason, Some(DisableReason::Expired));
    // Enabling while the expiry is past is refused on the field that lifts it.
    let refused = users
        .update(
            old.id,
            UserPatch {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(&refused, Err(e @ ServiceError::Invalid { .. }) if field(e) == "expire_at"),
        "{refused:?}"
    );
    // A later expiry enables at once; removing it (null) keeps the user enabled.
    let later = now() + DAY;
    let extended = users
        .update(
            old.id,
            UserPatch {
                expire_at: Some(Some(later)),
                ..Default::default()
            },
        )
        .await
        .expect("extend");
    assert!(extended.enabled);
    assert_eq!(extended.disabled_reason, None);
    assert_eq!(extended.expire_at, Some(later));
    let patch: UserPatch = serde_json::from_str(r#"{"expire_at": null}"#).expect("patch");
    assert_eq!(patch.expire_at, Some(None));
    let never = users.update(old.id, patch).await.expect("no expiry");
    assert_eq!((never.enabled, never.expire_at), (true, None));
    let absent: UserPatch = serde_json::from_str(r#"{"quota_bytes": 0}"#).expect("patch");
    assert_eq!(absent.expire_at, None, "an absent field keeps the value");
    // An expiry set in the past disables at once.
    let past = users
        .update(
            old.id,
            UserPatch {
                expire_at: Some(Some(now() - DAY)),
                ..Default::default()
            },
        )
        .await
        .expect("past");
    assert_eq!(past.disabled_reason, Some(DisableReason::Expired));
    // Out of range is a 4xx that changes nothing.
    let bad = users
        .update(
            old.id,
            UserPatch {
                expire_at: Some(Some(-5)),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(&bad, Err(e @ ServiceError::Invalid { .. }) if field(e) == "expire_at"));
    assert_eq!(users.get(old.id).await.expect("get"), past);

    // A manual disable survives a later expiry and a higher quota.
    let bob = users.create(new("bob", None)).await.expect("bob");
    let off = users
        .update(
            bob.id,
            UserPatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("disable");
    assert_eq!(off.disabled_reason, Some(DisableReason::Manual));
    let still = users
        .update(
            bob.id,
            UserPatch {
                expire_at: Some(Some(now() + DAY)),
                quota_bytes: Some(5_000),
                ..Default::default()
            },
        )
        .await
        .expect("edit");
    assert_eq!(
        (still.enabled, still.disabled_reason),
        (false, Some(DisableReason::Manual))
    );
}

#[tokio::test]
async fn the_expiry_check_disables_only_users_whose_time_has_come() {
    let t = open().await;
    let users = &t.manager.services.users;
    let soon = now() + 300;
    let a = users
        .create(NewUser {
            name: "soon".into(),
            expire_at: Some(soon),
            ..Default::default()
        })
        .await
        .expect("soon");
    let b = users
        .create(NewUser {
            name: "later".into(),
            expire_at: Some(now() + DAY),
            ..Default::default()
        })
        .await
        .expect("later");
    assert!(a.enabled && b.enabled);
    assert_eq!(users.expire_due().await.expect("check"), Vec::<i64>::new());
    // Wait for the moment itself (the check reads the clock), bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while now() <= soon {
        assert!(std::time::Instant::now() < deadline, "clock did not move");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(users.expire_due().await.expect("check"), vec![a.id]);
    let a = users.get(a.id).await.expect("get");
    assert_eq!(
        (a.enabled, a.disabled_reason),
        (false, Some(DisableReason::Expired))
    );
    assert!(users.get(b.id).await.expect("get").enabled);
    // Nothing twice.
    assert_eq!(users.expire_due().await.expect("check"), Vec::<i64>::new());
}

#[tokio::test]
async fn the_first_counted_byte_starts_the_clock_and_quota_edits_follow_the_rule() {
    let t = open().await;
    let s = &t.manager.services;
    let db = &t.manager.db;
    let u = s
        .users
        .create(NewUser {
            name: "u".into(),
            quota_bytes: 1_000,
            expire_after_first_use: Some(30 * DAY),
            ..Default::default()
        })
        .await
        .expect("user");
    assert_eq!((u.expire_at, u.first_used_at), (None, None));
    let n = s
        .nodes
        .create(NewNode {
            host: "127.0.0.1".into(),
            http_port: 9,
            insecure_http: true,
            ..Default::default()
        })
        .await
        .expect("node");
    let exp = accounting::Expected::Node {
        users: [u.id].into(),
        inbounds: Default::default(),
        outbounds: Default::default(),
    };
    let up = format!("user>>>{}>>>traffic>>>uplink", u.id);
    // A zero counter is no use.
    accounting::apply(db, n.id, "e1", &[stat(&up, 0)], &exp)
        .await
        .expect("apply");
    assert_eq!(s.users.get(u.id).await.expect("get").first_used_at, None);
    let before = now();
    accounting::apply(db, n.id, "e1", &[stat(&up, 400)], &exp)
        .await
        .expect("apply");
    let after = now();
    let used = s.users.get(u.id).await.expect("get");
    let first = used.first_used_at.expect("first use recorded");
    assert!((before..=after).contains(&first), "{first}");
    assert_eq!(used.expire_at, Some(first + 30 * DAY));
    // Later bytes move neither.
    accounting::apply(db, n.id, "e1", &[stat(&up, 1_000)], &exp)
        .await
        .expect("apply");
    let over = s.users.get(u.id).await.expect("get");
    assert_eq!(
        (over.first_used_at, over.expire_at),
        (Some(first), Some(first + 30 * DAY))
    );
    assert_eq!(over.disabled_reason, Some(DisableReason::Quota));
    // Enabling over the quota is refused on the quota field; raising the quota enables.
    let refused = s
        .users
        .update(
            u.id,
            UserPatch {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(&refused, Err(e @ ServiceError::Invalid { .. }) if field(e) == "quota_bytes"));
    let raised = s
        .users
        .update(
            u.id,
            UserPatch {
                quota_bytes: Some(2_000),
                ..Default::default()
            },
        )
        .await
        .expect("raise");
    assert_eq!((raised.enabled, raised.disabled_reason), (true, None));
    // Lowering it to the usage disables at once.
    let lowered = s
        .users
        .update(
            u.id,
            UserPatch {
                quota_bytes: Some(1_000),
                ..Default::default()
            },
        )
        .await
        .expect("lower");
    assert_eq!(lowered.disabled_reason, Some(DisableReason::Quota));
    // A first-use period set after the first use runs from that use.
    let clock = s
        .users
        .update(
            u.id,
            UserPatch {
                expire_after_first_use: Some(Some(DAY)),
                ..Default::default()
            },
        )
        .await
        .expect("clock");
    assert_eq!(clock.expire_at, Some(first + DAY));
    // The panel sends the shown expiry back with a new period: the period still decides.
    let resent = s
        .users
        .update(
            u.id,
            UserPatch {
                expire_at: Some(clock.expire_at),
                expire_after_first_use: Some(Some(2 * DAY)),
                ..Default::default()
            },
        )
        .await
        .expect("period");
    assert_eq!(resent.expire_at, Some(first + 2 * DAY));
    // With a period left, no expiry means the period's end; removing both removes it.
    let cleared: UserPatch = serde_json::from_str(r#"{"expire_at": null}"#).expect("patch");
    let kept = s.users.update(u.id, cleared).await.expect("clear date");
    assert_eq!(kept.expire_at, Some(first + 2 * DAY));
    let both: UserPatch =
        serde_json::from_str(r#"{"expire_at": null, "expire_after_first_use": null}"#)
            .expect("patch");
    let none = s.users.update(u.id, both).await.expect("clear both");
    assert_eq!((none.expire_at, none.expire_after_first_use), (None, None));

    // Disabling is the administrator's, also over a limit: a higher quota in the same edit
    // does not enable the user.
    let manual = s
        .users
        .update(
            u.id,
            UserPatch {
                enabled: Some(false),
                quota_bytes: Some(1_000_000),
                ..Default::default()
            },
        )
        .await
        .expect("disable");
    assert_eq!(
        (manual.enabled, manual.disabled_reason),
        (false, Some(DisableReason::Manual))
    );
}
