//! Tests of the token store: what is on disk, rotation and promotion across restarts, seeds,
//! migration, and the refusal log's rate limit.

use super::*;
use std::net::Ipv4Addr;

const SEED: &str = "seed-token-0123456789abcdef";
const NEXT: &str = "next-token-0123456789abcdef";
const OTHER: &str = "other-token-0123456789abcdef";

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn accepts(auth: &Auth, token: &str) -> bool {
    auth.authorize(Some(&bearer(token)), ip(1)).await.is_ok()
}

/// Every file in `dir`, read whole.
fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let path = e.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            (path, bytes)
        })
        .collect()
}

fn assert_no_token_on_disk(dir: &Path, tokens: &[&str]) {
    for (path, bytes) in all_files(dir) {
        let text = String::from_utf8_lossy(&bytes);
        for token in tokens {
            assert!(
                !text.contains(token),
                "{} holds a token: {text}",
                path.display()
            );
        }
    }
}

fn stored(dir: &Path) -> serde_json::Value {
    let bytes = std::fs::read(dir.join(TOKEN_STATE_FILE)).expect("token.json");
    serde_json::from_slice(&bytes).expect("json")
}

fn hex_hash(token: &str) -> String {
    hex::encode(hash(token))
}

#[tokio::test]
async fn the_store_keeps_hashes_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (auth, opened) = Auth::open(dir.path(), Some(SEED)).expect("open");
    assert_eq!(opened, Opened::Seeded);
    assert_eq!(
        stored(dir.path()),
        serde_json::json!({"seed": hex_hash(SEED), "current": hex_hash(SEED), "next": null})
    );
    auth.rotate(NEXT).await.expect("rotate");
    assert_eq!(
        stored(dir.path()),
        serde_json::json!({"seed": hex_hash(SEED), "current": hex_hash(SEED), "next": hex_hash(NEXT)})
    );
    assert_no_token_on_disk(dir.path(), &[SEED, NEXT]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(dir.path().join(TOKEN_STATE_FILE)).expect("metadata");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test]
async fn a_generated_token_is_returned_once_and_only_its_hash_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (auth, opened) = Auth::open(dir.path(), None).expect("open");
    let Opened::Generated(token) = opened else {
        panic!("expected a generated token, got {opened:?}")
    };
    assert_eq!(format!("{token:?}"), "GeneratedToken(<redacted>)");
    let token = token.expose().to_owned();
    assert!(accepts(&auth, &token).await);
    assert_eq!(
        stored(dir.path()),
        serde_json::json!({"seed": null, "current": hex_hash(&token), "next": null})
    );
    assert_no_token_on_disk(dir.path(), &[&token]);

    let (again, opened) = Auth::open(dir.path(), None).expect("reopen");
    assert_eq!(opened, Opened::Kept);
    assert!(accepts(&again, &token).await);
}

/// A rotation, step by step, with the store reopened from disk after each step: the state on
/// disk alone decides which tokens are accepted.
#[tokio::test]
async fn a_rotation_survives_restarts_at_every_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reopen = || {
        let (auth, opened) = Auth::open(dir.path(), Some(SEED)).expect("reopen");
        assert_eq!(opened, Opened::Kept);
        auth
    };
    let (auth, _) = Auth::open(dir.path(), Some(SEED)).expect("open");
    assert!(accepts(&auth, SEED).await);
    assert!(!accepts(&auth, NEXT).await);

    auth.rotate(NEXT).await.expect("rotate");
    for auth in [auth, reopen()] {
        // Both accepted, by a check that does not use the next one.
        assert!(accepts(&auth, SEED).await);
        assert!(!accepts(&auth, OTHER).await);
    }

    let auth = reopen();
    assert!(accepts(&auth, NEXT).await, "the next token is accepted");
    assert_eq!(
        stored(dir.path()),
        serde_json::json!({"seed": hex_hash(SEED), "current": hex_hash(NEXT), "next": null}),
        "the promotion is on disk before the call is handled"
    );
    for auth in [auth, reopen()] {
        assert!(!accepts(&auth, SEED).await, "the old token is refused");
        assert!(accepts(&auth, NEXT).await);
    }
    assert_no_token_on_disk(dir.path(), &[SEED, NEXT]);
}

#[tokio::test]
async fn a_later_rotation_replaces_a_pending_one() {
    let auth = Auth::in_memory(SEED);
    auth.rotate(NEXT).await.expect("rotate");
    auth.rotate(OTHER).await.expect("rotate again");
    assert!(!accepts(&auth, NEXT).await);
    assert!(accepts(&auth, SEED).await);
    assert!(accepts(&auth, OTHER).await);
    assert!(!accepts(&auth, SEED).await);
}

#[tokio::test]
async fn a_changed_seed_replaces_the_stored_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (auth, _) = Auth::open(dir.path(), Some(SEED)).expect("open");
    auth.rotate(NEXT).await.expect("rotate");
    assert!(accepts(&auth, NEXT).await);

    let (auth, opened) = Auth::open(dir.path(), Some(OTHER)).expect("new seed");
    assert_eq!(opened, Opened::SeedChanged);
    assert!(accepts(&auth, OTHER).await);
    assert!(!accepts(&auth, NEXT).await);
    assert!(!accepts(&auth, SEED).await);
    assert_eq!(
        stored(dir.path()),
        serde_json::json!({"seed": hex_hash(OTHER), "current": hex_hash(OTHER), "next": null})
    );

    // A seed given to a node that generated its token replaces it too.
    let gen = tempfile::tempdir().expect("tempdir");
    Auth::open(gen.path(), None).expect("generate");
    let (_, opened) = Auth::open(gen.path(), Some(SEED)).expect("seed");
    assert_eq!(opened, Opened::SeedChanged);
}

#[tokio::test]
async fn the_plain_token_file_of_earlier_versions_is_migrated_and_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let legacy = dir.path().join(LEGACY_TOKEN_FILE);
    std::fs::write(&legacy, format!("{SEED}\n")).expect("legacy");
    let (auth, opened) = Auth::open(dir.path(), None).expect("open");
    assert_eq!(opened, Opened::Migrated);
    assert!(!legacy.exists());
    assert!(accepts(&auth, SEED).await);
    assert_no_token_on_disk(dir.path(), &[SEED]);
    let (auth, opened) = Auth::open(dir.path(), None).expect("reopen");
    assert_eq!(opened, Opened::Kept);
    assert!(accepts(&auth, SEED).await);

    // With an operator's token, the old file is deleted all the same.
    let dir = tempfile::tempdir().expect("tempdir");
    let legacy = dir.path().join(LEGACY_TOKEN_FILE);
    std::fs::write(&legacy, format!("{SEED}\n")).expect("legacy");
    let (auth, opened) = Auth::open(dir.path(), Some(OTHER)).expect("open");
    assert_eq!(opened, Opened::Seeded);
    assert!(!legacy.exists());
    assert!(!accepts(&auth, SEED).await);
    assert!(accepts(&auth, OTHER).await);
}

#[test]
fn a_corrupt_state_file_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(TOKEN_STATE_FILE);
    std::fs::write(&path, r#"{"seed": null, "current": "xyz", "next": null}"#).expect("write");
    let err = Auth::open(dir.path(), None).expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not a token state file (current is not 64 hex digits); delete it to start with a new token (the manager must then be given it)",
            path.display()
        )
    );
}

#[tokio::test]
async fn refusals_are_counted_with_their_reason() {
    let auth = Auth::in_memory(SEED);
    let refusal = |r: Result<(), Denied>| match r {
        Err(Denied::Refused(reason)) => Some(reason),
        _ => None,
    };
    assert_eq!(
        refusal(auth.authorize(None, ip(1)).await),
        Some(Refusal::MissingToken)
    );
    assert_eq!(
        refusal(auth.authorize(Some("Bearer "), ip(1)).await),
        Some(Refusal::MissingToken)
    );
    assert_eq!(
        refusal(auth.authorize(Some(&format!("Basic {SEED}")), ip(1)).await),
        Some(Refusal::MissingToken)
    );
    assert_eq!(
        refusal(auth.authorize(Some(&bearer(OTHER)), ip(2)).await),
        Some(Refusal::WrongToken)
    );
    assert!(auth.authorize(Some(&bearer(SEED)), ip(2)).await.is_ok());
    assert_eq!(auth.refused_calls(), 4);
}

#[test]
fn a_source_is_logged_once_a_minute() {
    let log = RefusalLog::default();
    let t0 = Instant::now();
    assert!(log.should_log(ip(1), t0));
    assert!(!log.should_log(ip(1), t0 + Duration::from_secs(1)));
    assert!(log.should_log(ip(2), t0 + Duration::from_secs(1)));
    assert!(!log.should_log(ip(1), t0 + Duration::from_secs(59)));
    assert!(log.should_log(ip(1), t0 + Duration::from_secs(60)));
    assert!(!log.should_log(ip(1), t0 + Duration::from_secs(61)));
    // The same address written as IPv4-mapped IPv6 is the same source.
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
    assert!(!log.should_log(mapped, t0 + Duration::from_secs(62)));
}

#[test]
fn the_refusal_log_is_bounded() {
    let log = RefusalLog::default();
    let t0 = Instant::now();
    let many = |n: usize| {
        (0..n).map(|i| {
            let i = u32::try_from(i).expect("small");
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
        })
    };
    for source in many(MAX_LOGGED_SOURCES) {
        assert!(log.should_log(source, t0));
    }
    let extra = ip(9);
    assert!(
        !log.should_log(extra, t0 + Duration::from_secs(1)),
        "full of recent sources: counted, not logged"
    );
    assert_eq!(
        log.inner.lock().expect("lock").last.len(),
        MAX_LOGGED_SOURCES
    );
    // A minute later the old entries are pruned and the new source is logged.
    assert!(log.should_log(extra, t0 + Duration::from_secs(60)));
    assert_eq!(log.inner.lock().expect("lock").last.len(), 1);
}
