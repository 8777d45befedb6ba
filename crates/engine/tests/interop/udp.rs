//! UDP relay through classic (ss-tunnel -U) and SS-2022 EIH (sslocal tunnel -u) ports.

use crate::support::*;
use engine::Engine;
use xray::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_udp_echo_is_counted() {
    init_logs();
    let echo = udp_echo().await;
    let port = free_port();
    let engine = Engine::new();
    let users = [("alice", "alice-pass-1"), ("bob", "bob-pass-2")];
    let config = direct_config(vec![inbound("direct", port, Method::Aes256Gcm, "", &users)]);
    engine.apply(&config).await.expect("apply");
    let Some((_tunnel, local_port)) = ss_tunnel_udp(port, "aes-256-gcm", "bob-pass-2", echo).await
    else {
        return;
    };
    assert_eq!(echo_through(local_port, 10, 100).await, 10);
    assert_eq!(
        settled_user_traffic(&engine, "bob", (1000, 1000)).await,
        (1000, 1000)
    );
    assert_eq!(user_traffic(&engine, "alice"), (0, 0));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ss2022_eih_udp_echo_is_counted() {
    init_logs();
    let echo = udp_echo().await;
    let port = free_port();
    let engine = Engine::new();
    let ipsk = key(1, 16);
    let eve = key(2, 16);
    let users = [("eve", eve.as_str()), ("frank", "AwMDAwMDAwMDAwMDAwMDAw==")];
    let config = direct_config(vec![inbound(
        "direct",
        port,
        Method::Blake3Aes128Gcm,
        &ipsk,
        &users,
    )]);
    engine.apply(&config).await.expect("apply");
    let Some(bin) = client_bin("sslocal") else {
        return;
    };
    let local_port = free_port();
    let args = [
        "--protocol",
        "tunnel",
        "-b",
        &format!("127.0.0.1:{local_port}"),
        "-f",
        &format!("127.0.0.1:{echo}"),
        "-s",
        &format!("127.0.0.1:{port}"),
        "-m",
        "2022-blake3-aes-128-gcm",
        "-k",
        &format!("{ipsk}:{eve}"),
        "-u",
    ]
    .map(String::from);
    let _tunnel = spawn(&bin, &args, None).await;
    wait_udp_bound(local_port).await;
    assert_eq!(echo_through(local_port, 4, 300).await, 4);
    assert_eq!(
        settled_user_traffic(&engine, "eve", (1200, 1200)).await,
        (1200, 1200)
    );
    engine.shutdown().await;
}
