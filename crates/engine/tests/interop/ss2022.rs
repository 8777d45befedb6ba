//! SS-2022: EIH users on one port (sslocal), single-key ports, unknown users.

use crate::support::*;
use engine::Engine;
use xray::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_eih_users_on_one_port_are_counted_exactly() {
    init_logs();
    let http = Http::start().await;
    let port = free_port();
    let engine = Engine::new();
    let ipsk = key(1, 16);
    let (eve, frank) = (key(2, 16), key(3, 16));
    let users = [("eve", eve.as_str()), ("frank", frank.as_str())];
    let config = direct_config(vec![inbound(
        "direct",
        port,
        Method::Blake3Aes128Gcm,
        &ipsk,
        &users,
    )]);
    engine.apply(&config).await.expect("apply");
    let m = "2022-blake3-aes-128-gcm";
    let Some((_e, e_port)) = sslocal(port, m, &format!("{ipsk}:{eve}")).await else {
        return;
    };
    let Some((_f, f_port)) = sslocal(port, m, &format!("{ipsk}:{frank}")).await else {
        return;
    };

    let f = curl(e_port, &http.url("/2000000"), 20).await;
    assert_eq!((f.code, f.bytes), (0, 2_000_000));
    let eve_http = http.totals();
    let f = curl(f_port, &http.url("/777"), 20).await;
    assert_eq!((f.code, f.bytes), (0, 777));
    let all = http.totals();
    assert_eq!(
        user_traffic(&engine, "eve"),
        (eve_http.request, eve_http.response)
    );
    assert_eq!(
        user_traffic(&engine, "frank"),
        (
            all.request - eve_http.request,
            all.response - eve_http.response
        )
    );

    // An unknown user key is refused and counts nowhere.
    let stranger = key(9, 16);
    let Some((_s, s_port)) = sslocal(port, m, &format!("{ipsk}:{stranger}")).await else {
        return;
    };
    let f = curl(s_port, &http.url("/1000"), 10).await;
    assert_ne!(f.code, 0);
    assert_eq!(http.totals().response, all.response);
    assert_eq!(
        counter(&engine, "inbound>>>direct>>>traffic>>>downlink"),
        all.response
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_key_aes256_port_serves_sslocal() {
    init_logs();
    let http = Http::start().await;
    let port = free_port();
    let engine = Engine::new();
    let psk = key(4, 32);
    let config = direct_config(vec![inbound(
        "direct",
        port,
        Method::Blake3Aes256Gcm,
        &psk,
        &[],
    )]);
    engine.apply(&config).await.expect("apply");
    let Some((_c, socks)) = sslocal(port, "2022-blake3-aes-256-gcm", &psk).await else {
        return;
    };
    let f = curl(socks, &http.url("/65536"), 20).await;
    assert_eq!((f.code, f.bytes), (0, 65_536));
    let t = http.totals();
    assert_eq!(
        counter(&engine, "inbound>>>direct>>>traffic>>>downlink"),
        t.response
    );
    assert_eq!(
        counter(&engine, "inbound>>>direct>>>traffic>>>uplink"),
        t.request
    );
    engine.shutdown().await;
}
