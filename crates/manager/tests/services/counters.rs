//! Node counters are untrusted input: a fake node on 127.0.0.1 lies in every way a stolen or
//! buggy node could, and the manager must add exactly what an honest node would have made it add.

use super::{open, stat};
use manager::entity::node::NodeStatus;
use manager::{accounting, NewNode, NewUser, SettingsPatch};
use std::sync::{Arc, Mutex};
use xray::api::{Stat, EPOCH_HEADER};

/// A node API that answers every request with `GET /v1/stats` = the stats set by the test.
struct FakeNode {
    port: u16,
    stats: Arc<Mutex<Vec<Stat>>>,
}

impl FakeNode {
    async fn start() -> FakeNode {
        let stats: Arc<Mutex<Vec<Stat>>> = Arc::default();
        let shared = stats.clone();
        let epoch = format!("{EPOCH_HEADER}: e1");
        let port = testkit::net::answering(
            "200 OK",
            &["Content-Type: application/json", &epoch],
            move || serde_json::to_vec(&*shared.lock().expect("stats")).expect("json"),
        )
        .await;
        FakeNode { port, stats }
    }

    fn reply(&self, stats: &[(&str, u64)]) {
        *self.stats.lock().expect("stats") = stats.iter().map(|(n, v)| stat(n, *v)).collect();
    }
}

#[tokio::test]
async fn lying_node_changes_nothing_and_honest_counters_still_count() {
    let t = open().await;
    let s = &t.manager.services;
    s.settings
        .update(SettingsPatch {
            ss_remote_port: Some(9004),
            ..Default::default()
        })
        .await
        .expect("remote mode on");
    let user = |name: &str, quota: i64, enabled: bool| NewUser {
        name: name.into(),
        quota_bytes: quota,
        enabled,
        ..Default::default()
    };
    let alice = s.users.create(user("alice", 0, true)).await.expect("alice");
    let bob = s
        .users
        .create(user("bob", 5 << 30, true))
        .await
        .expect("bob");
    let carol = s
        .users
        .create(user("carol", 0, false))
        .await
        .expect("carol");
    let fake = FakeNode::start().await;
    let n = s
        .nodes
        .create(NewNode {
            host: "127.0.0.1".into(),
            http_port: fake.port,
            http_token: None,
            insecure_http: true,
            ..Default::default()
        })
        .await
        .expect("node");
    let name = |id: i64, dir: &str| format!("user>>>{id}>>>traffic>>>{dir}");
    let (a_up, a_down) = (name(alice.id, "uplink"), name(alice.id, "downlink"));
    let b_down = name(bob.id, "downlink");
    let c_up = name(carol.id, "uplink");
    let (in_up, in_down) = (
        "inbound>>>remote>>>traffic>>>uplink",
        "inbound>>>remote>>>traffic>>>downlink",
    );
    let usage = |id: i64| async move { s.users.get(id).await.expect("user").usage_bytes };
    let coordinator = &t.manager.coordinator;

    // 1. Honest.
    fake.reply(&[(&a_up, 100), (in_up, 100)]);
    coordinator.pull_once().await.expect("pull");
    assert_eq!(usage(alice.id).await, 100);
    assert_eq!(s.nodes.get(n.id).await.expect("node").usage_bytes, 100);

    // 2. Lies: a disabled user, an unknown user, a tag the writer never generated, garbage
    //    names, more than 10 Gbit/s could carry, a value beyond i64, a counter going backwards,
    //    the same counter twice, and two inbound values whose sum would wrap.
    fake.reply(&[
        (&c_up, 1_000),
        ("user>>>999>>>traffic>>>uplink", 5),
        ("inbound>>>evil>>>traffic>>>uplink", 7),
        ("user>>>x>>>traffic>>>uplink", 9),
        ("junk", 1),
        (&b_down, 1_000_000_000_000_000),
        (&a_down, u64::MAX),
        (&a_up, 40),
        (in_up, 100),
        (in_up, 200),
        (in_down, i64::MAX as u64),
    ]);
    coordinator.pull_once().await.expect("pull");
    assert_eq!(usage(alice.id).await, 100);
    let b = s.users.get(bob.id).await.expect("bob");
    assert_eq!(b.usage_bytes, 0);
    assert!(b.enabled, "a lie must not disable a user for quota");
    assert_eq!(usage(carol.id).await, 0);
    let node = s.nodes.get(n.id).await.expect("node");
    assert_eq!(node.usage_bytes, 100);
    assert_eq!(node.pull_status, NodeStatus::Available);

    // 3. Honest again: every counter counts from the last value it reported; a counter whose
    //    lie moved its baseline counts again from the next report on.
    fake.reply(&[
        (&a_up, 140),
        (&a_down, 1_000),
        (in_up, 1_100),
        (in_down, 60),
        (&b_down, 2_000),
    ]);
    coordinator.pull_once().await.expect("pull");
    assert_eq!(usage(alice.id).await, 1_200);
    assert_eq!(usage(bob.id).await, 0);
    assert_eq!(s.nodes.get(n.id).await.expect("node").usage_bytes, 1_100);
    fake.reply(&[
        (&a_up, 140),
        (&a_down, 1_000),
        (in_up, 1_100),
        (in_down, 560),
        (&b_down, 2_500),
    ]);
    coordinator.pull_once().await.expect("pull");
    assert_eq!(usage(alice.id).await, 1_200);
    assert_eq!(usage(bob.id).await, 500);
    assert_eq!(s.nodes.get(n.id).await.expect("node").usage_bytes, 1_600);
}

#[tokio::test]
async fn usage_sums_never_wrap() {
    let t = open().await;
    let s = &t.manager.services;
    let u = s
        .users
        .create(NewUser {
            name: "u".into(),
            quota_bytes: 0,
            enabled: true,
            ..Default::default()
        })
        .await
        .expect("user");
    let up = format!("user>>>{}>>>traffic>>>uplink", u.id);
    let down = format!("user>>>{}>>>traffic>>>downlink", u.id);
    let max = i64::MAX as u64;
    // Trusted source, so no rate bound: only the checked sums stand between this and a wrap.
    let a = accounting::apply(
        &t.manager.db,
        accounting::LOCAL_NODE,
        "e",
        &[stat(&up, max), stat(&down, max)],
        &accounting::Expected::Local,
    )
    .await
    .expect("apply");
    assert_eq!(a.refused, 1);
    assert_eq!(s.users.get(u.id).await.expect("user").usage_bytes, i64::MAX);
    let a = accounting::apply(
        &t.manager.db,
        accounting::LOCAL_NODE,
        "e2",
        &[stat(&up, 10)],
        &accounting::Expected::Local,
    )
    .await
    .expect("apply");
    assert_eq!(a.refused, 1);
    assert_eq!(s.users.get(u.id).await.expect("user").usage_bytes, i64::MAX);
}
