//! Desired versions are read from the coordinator's memory, not computed per read: a sync pass
//! and a restart update them, node reads and node events only look them up.

use super::{counter_node, open};
use manager::{Event, NewUser, ServiceError, SettingsPatch};
use tokio::sync::broadcast::Receiver;

/// The node events received so far.
fn node_events(rx: &mut Receiver<Event>) -> Vec<manager::events::NodeLive> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|e| match e {
            Event::Node(live) => Some(live),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn desired_versions_are_those_of_the_last_sync_pass_or_restart() {
    let t = open().await;
    let s = &t.manager.services;
    let coordinator = &t.manager.coordinator;
    // Remote mode: the node's config lists every user, so a new user changes it. No coordinator
    // loop runs here: a pass happens only when the test calls one.
    s.settings
        .update(SettingsPatch {
            ss_remote_port: Some(9004),
            ..Default::default()
        })
        .await
        .expect("remote mode on");
    let n = counter_node(&t).await;
    assert_eq!(n.desired_version, None, "no pass has seen the node yet");
    assert_eq!(s.nodes.get(n.id).await.expect("node").desired_version, None);

    let mut rx = s.events.subscribe();
    coordinator.sync_once().await.expect("sync");
    let first = s.nodes.get(n.id).await.expect("node").desired_version;
    assert!(first.is_some(), "set by the pass");
    let listed = s.nodes.list().await.expect("list");
    assert_eq!(listed[0].desired_version, first);
    // The pass told subscribers at once, before its push (which fails: nothing listens).
    let live = node_events(&mut rx);
    assert!(
        live.iter()
            .any(|l| l.id == n.id && l.desired_version == first && l.applied_version.is_none()),
        "{live:?}"
    );

    // A user changes the node's config, but no pass has run: reads still show the last pass's
    // version: nothing is computed per read.
    s.users
        .create(NewUser {
            name: "alice".into(),
            enabled: true,
            ..Default::default()
        })
        .await
        .expect("alice");
    assert_eq!(
        s.nodes.get(n.id).await.expect("node").desired_version,
        first
    );
    assert_eq!(
        s.nodes.list().await.expect("list")[0].desired_version,
        first
    );
    node_events(&mut rx);
    coordinator.sync_once().await.expect("sync");
    let second = s.nodes.get(n.id).await.expect("node");
    assert!(second.desired_version.is_some());
    assert_ne!(second.desired_version, first, "moved by the pass");
    assert!(second.has_drift());
    let live = node_events(&mut rx);
    assert!(
        live.iter()
            .any(|l| l.id == n.id && l.desired_version == second.desired_version),
        "{live:?}"
    );
    assert!(
        live.iter().all(|l| l.desired_version.is_some()),
        "every node event carries the desired version: {live:?}"
    );

    // A restart computes the node's version afresh and records it, also when the push fails.
    s.users
        .create(NewUser {
            name: "bob".into(),
            enabled: true,
            ..Default::default()
        })
        .await
        .expect("bob");
    assert_eq!(
        s.nodes.get(n.id).await.expect("node").desired_version,
        second.desired_version
    );
    let err = s.nodes.restart(n.id).await.expect_err("nothing listens");
    assert!(matches!(err, ServiceError::Unreachable(_)), "{err:?}");
    let third = s.nodes.get(n.id).await.expect("node").desired_version;
    assert!(third.is_some());
    assert_ne!(third, second.desired_version, "moved by the restart");
    let live = node_events(&mut rx);
    assert!(
        live.iter()
            .any(|l| l.id == n.id && l.desired_version == third && l.push_status == "unavailable"),
        "the restart's event carries the new version: {live:?}"
    );
    // The next pass computes the same version.
    coordinator.sync_once().await.expect("sync");
    assert_eq!(
        s.nodes.get(n.id).await.expect("node").desired_version,
        third
    );

    // Other node calls return it too; a deleted node is forgotten.
    let reset = s.nodes.reset_usage(n.id).await.expect("reset");
    assert_eq!(reset.desired_version, third);
    s.nodes.delete(n.id).await.expect("delete");
    assert!(s.nodes.list().await.expect("list").is_empty());
}
