//! The node API's token: what the node keeps of it (only SHA-256 hashes, in `token.json`), how a
//! presented Bearer token is checked (in constant time, against the current token and a pending
//! next one), rotation, and the record of refused calls.
//!
//! Rotation without downtime: `POST /v1/token` sets the *next* token ([`Auth::rotate`]); both
//! tokens are accepted until the first call made with the next one, which promotes it: the
//! promotion is stored durably before that call is handled, and from then on the old token is
//! refused. A rotation interrupted at any point leaves the node reachable with the old token (the
//! next one not yet stored, or stored but unused) or the new one (already promoted).
//!
//! The operator's `--token`/`--token-file` is a *seed*: `token.json` remembers the hash of the
//! seed it was made from, so a rotation survives restarts although the operator's file still
//! holds the first token; a different seed (the operator changed the token) replaces the stored
//! token. Without a seed the node generates a token on first start, shows it once and stores
//! only its hash.
//!
//! Refused calls (no or a malformed `Authorization`, or a wrong token) are counted since start and
//! logged with their source address, at most once per source per minute; the presented token is
//! never logged. Errors: [`AuthError`].

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::PoisonError;
use std::time::{Duration, Instant};
use subtle::{Choice, ConstantTimeEq as _};

/// The token state file in the data dir (mode `0600`): hashes only, never a token.
pub const TOKEN_STATE_FILE: &str = "token.json";
/// The plain token file of earlier versions, converted to [`TOKEN_STATE_FILE`] and deleted.
pub const LEGACY_TOKEN_FILE: &str = "token";
/// A source's refused calls are logged at most once in this period.
const LOG_PERIOD: Duration = Duration::from_secs(60);
/// Sources remembered by the refusal log; past it, refusals from new sources are only counted
/// until older entries expire.
const MAX_LOGGED_SOURCES: usize = 4096;

type Hash = [u8; 32];

fn hash(token: &str) -> Hash {
    Sha256::digest(token.as_bytes()).into()
}

/// What the node keeps of its token.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Hashes {
    /// Hash of the operator's token this state was made from; `None` when generated.
    seed: Option<Hash>,
    current: Hash,
    /// A rotation's token, accepted until its first use promotes it.
    next: Option<Hash>,
}

/// `token.json`.
#[derive(Serialize, Deserialize)]
struct TokenFile {
    seed: Option<String>,
    current: String,
    next: Option<String>,
}

impl From<&Hashes> for TokenFile {
    fn from(h: &Hashes) -> Self {
        TokenFile {
            seed: h.seed.map(hex::encode),
            current: hex::encode(h.current),
            next: h.next.map(hex::encode),
        }
    }
}

/// Everything that can go wrong with the stored token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a token state file ({reason}); delete it to start with a new token (the manager must then be given it)", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("deleting {}", path.display())]
    Delete {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token in {} {message}", path.display())]
    BadLegacyToken { path: PathBuf, message: String },
    #[error("storing the token state was interrupted")]
    Interrupted,
}

/// A token the node generated on first start: shown once, never stored. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedToken(String);

impl GeneratedToken {
    /// The token itself, to show the operator once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for GeneratedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GeneratedToken(<redacted>)")
    }
}

/// What [`Auth::open`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The stored state was kept (made from the same seed, or from none given now).
    Kept,
    /// First start with the operator's token.
    Seeded,
    /// The operator's token differs from the one the stored state was made from: it replaced
    /// the stored token and any rotation.
    SeedChanged,
    /// The plain token file of an earlier version was converted to hashes and deleted.
    Migrated,
    /// First start without a token: this one was generated; only its hash is stored.
    Generated(GeneratedToken),
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer …` header, or a malformed one.
    MissingToken,
    /// A token that is neither the current nor the next one.
    WrongToken,
}

impl Refusal {
    /// The reason as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::MissingToken => "missing token",
            Refusal::WrongToken => "wrong token",
        }
    }
}

/// Why a call was not let through.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// The caller has no valid token (401).
    #[error("{}", .0.as_str())]
    Refused(Refusal),
    /// The call's token was the next one, but its promotion could not be stored (503): the
    /// call is not handled, and the old token stays valid.
    #[error("promoting the next token: {0}")]
    Storage(AuthError),
}

/// The node API's token store and refusal record. Cheap to share behind an `Arc`.
pub struct Auth {
    /// Async: a promotion holds it while the new state is written.
    hashes: tokio::sync::Mutex<Hashes>,
    /// `token.json`; `None` for a store in memory only.
    path: Option<PathBuf>,
    refused: AtomicU64,
    log: RefusalLog,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("path", &self.path)
            .field("refused", &self.refused_calls())
            .finish_non_exhaustive()
    }
}

impl Auth {
    fn with(hashes: Hashes, path: Option<PathBuf>) -> Auth {
        Auth {
            hashes: tokio::sync::Mutex::new(hashes),
            path,
            refused: AtomicU64::new(0),
            log: RefusalLog::default(),
        }
    }

    /// A store in memory only, accepting `token`: rotations work but are not persisted.
    pub fn in_memory(token: &str) -> Auth {
        Auth::with(
            Hashes {
                seed: None,
                current: hash(token),
                next: None,
            },
            None,
        )
    }

    /// The store in `data_dir` (which must exist), given the operator's token `seed` if any
    /// (already checked by the token rule). See the module documentation for what is kept,
    /// replaced, migrated or generated; the answer says which happened.
    pub fn open(data_dir: &Path, seed: Option<&str>) -> Result<(Auth, Opened), AuthError> {
        let path = data_dir.join(TOKEN_STATE_FILE);
        let legacy = data_dir.join(LEGACY_TOKEN_FILE);
        let stored = read_state(&path)?;
        let seed = seed.map(hash);
        let (hashes, opened) = match (seed, stored) {
            (Some(s), Some(st)) if st.seed == Some(s) => (st, Opened::Kept),
            (Some(s), Some(_)) => (Hashes::seeded(s), Opened::SeedChanged),
            (Some(s), None) => (Hashes::seeded(s), Opened::Seeded),
            (None, Some(st)) => (st, Opened::Kept),
            (None, None) => match read_legacy(&legacy)? {
                Some(token) => (Hashes::generated(&token), Opened::Migrated),
                None => {
                    let token = random_token();
                    (
                        Hashes::generated(&token),
                        Opened::Generated(GeneratedToken(token)),
                    )
                }
            },
        };
        if opened != Opened::Kept {
            write_state(&path, &hashes)?;
        }
        match opened {
            Opened::SeedChanged => tracing::warn!(
                file = %path.display(),
                "the operator's new token replaced the stored one (and any pending rotation)"
            ),
            Opened::Migrated => tracing::info!(
                from = %legacy.display(),
                to = %path.display(),
                "plain token file converted to hashes"
            ),
            _ => {}
        }
        // Whatever happened, the plain token of an earlier version must not stay on disk.
        match std::fs::remove_file(&legacy) {
            Ok(()) => {
                if opened != Opened::Migrated {
                    tracing::info!(file = %legacy.display(), "plain token file of an earlier version deleted");
                }
                sync_dir(data_dir).map_err(|source| AuthError::Delete {
                    path: legacy.clone(),
                    source,
                })?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(AuthError::Delete {
                    path: legacy,
                    source,
                })
            }
        }
        Ok((Auth::with(hashes, Some(path)), opened))
    }

    /// Checks a call's `Authorization` header value (`None` when absent or not text) from
    /// `source`. The token is compared with the current and the next token in constant time;
    /// the next one is promoted (stored durably first) when it is used. A refusal is counted
    /// and logged (rate-limited per source).
    pub async fn authorize(
        &self,
        authorization: Option<&str>,
        source: IpAddr,
    ) -> Result<(), Denied> {
        let presented = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| !t.is_empty());
        let Some(presented) = presented else {
            return Err(self.refuse(source, Refusal::MissingToken));
        };
        let presented = hash(presented);
        let mut hashes = self.hashes.lock().await;
        let is_current = presented.ct_eq(&hashes.current);
        // Compared with a value either way, so the time taken does not tell whether one is set.
        let (next, has_next) = match hashes.next {
            Some(n) => (n, Choice::from(1)),
            None => ([0u8; 32], Choice::from(0)),
        };
        let is_next = presented.ct_eq(&next) & has_next;
        if bool::from(is_current) {
            return Ok(());
        }
        if !bool::from(is_next) {
            drop(hashes);
            return Err(self.refuse(source, Refusal::WrongToken));
        }
        let promoted = Hashes {
            current: next,
            next: None,
            ..*hashes
        };
        self.persist(&promoted).await.map_err(Denied::Storage)?;
        *hashes = promoted;
        tracing::info!(source = %source, "next token used: it is now the only accepted token");
        Ok(())
    }

    /// Sets the next token (replacing an earlier pending one) and stores it durably; the current
    /// one stays valid until the next one is used. On error nothing changed.
    pub async fn rotate(&self, next_token: &str) -> Result<(), AuthError> {
        let mut hashes = self.hashes.lock().await;
        let next = hash(next_token);
        let rotated = Hashes {
            next: (next != hashes.current).then_some(next),
            ..*hashes
        };
        self.persist(&rotated).await?;
        *hashes = rotated;
        Ok(())
    }

    /// Calls refused since this store was opened.
    pub fn refused_calls(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Counts a refusal and logs it unless this source was logged within the last minute.
    fn refuse(&self, source: IpAddr, reason: Refusal) -> Denied {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if self.log.should_log(source, Instant::now()) {
            tracing::warn!(source = %source, reason = reason.as_str(), "refused a node API call");
        }
        Denied::Refused(reason)
    }

    /// Writes `hashes` to `token.json` durably (nothing for a store in memory).
    async fn persist(&self, hashes: &Hashes) -> Result<(), AuthError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let hashes = *hashes;
        tokio::task::spawn_blocking(move || write_state(&path, &hashes))
            .await
            .map_err(|_| AuthError::Interrupted)?
    }
}

impl Hashes {
    fn seeded(seed: Hash) -> Hashes {
        Hashes {
            seed: Some(seed),
            current: seed,
            next: None,
        }
    }

    fn generated(token: &str) -> Hashes {
        Hashes {
            seed: None,
            current: hash(token),
            next: None,
        }
    }
}

fn read_state(path: &Path) -> Result<Option<Hashes>, AuthError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    daemon::fs::restrict(path, 0o600).map_err(|e| AuthError::Corrupt {
        path: path.to_owned(),
        reason: format!("{e:#}"),
    })?;
    let corrupt = |reason: String| AuthError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let file: TokenFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let parse = |field: &str, v: &str| -> Result<Hash, AuthError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(v, &mut out)
            .map_err(|_| corrupt(format!("{field} is not 64 hex digits")))?;
        Ok(out)
    };
    Ok(Some(Hashes {
        seed: file.seed.as_deref().map(|s| parse("seed", s)).transpose()?,
        current: parse("current", &file.current)?,
        next: file.next.as_deref().map(|s| parse("next", s)).transpose()?,
    }))
}

fn write_state(path: &Path, hashes: &Hashes) -> Result<(), AuthError> {
    let write = || -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(&TokenFile::from(hashes))?;
        crate::state::write_atomic(path, &bytes)
    };
    write().map_err(|source| AuthError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The token of an earlier version's plain token file (first line), if there is one.
fn read_legacy(path: &Path) -> Result<Option<String>, AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let first = text.lines().next().unwrap_or_default();
    rules::input::node_token(first)
        .map(Some)
        .map_err(|e| AuthError::BadLegacyToken {
            path: path.to_owned(),
            message: e.message,
        })
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A new token: 32 random bytes as 64 hex digits.
pub fn random_token() -> String {
    use rand::RngCore as _;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// When each source's refusals were last logged: at most once per [`LOG_PERIOD`] per source,
/// for at most [`MAX_LOGGED_SOURCES`] sources at a time.
#[derive(Default)]
struct RefusalLog {
    inner: std::sync::Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    last: HashMap<IpAddr, Instant>,
    pruned: Option<Instant>,
}

impl RefusalLog {
    /// Whether a refusal from `source` at `now` is to be logged (and then remembers it).
    fn should_log(&self, source: IpAddr, now: Instant) -> bool {
        let source = source.to_canonical();
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < LOG_PERIOD;
        if state.last.get(&source).is_some_and(fresh) {
            return false;
        }
        let prune_due = state
            .pruned
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_PERIOD);
        if prune_due || state.last.len() >= MAX_LOGGED_SOURCES {
            state.last.retain(|_, at| fresh(at));
            state.pruned = Some(now);
        }
        if state.last.len() >= MAX_LOGGED_SOURCES && !state.last.contains_key(&source) {
            return false;
        }
        state.last.insert(source, now);
        true
    }
}

#[cfg(test)]
mod tests;
