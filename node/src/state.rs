//! The node's state: the engine, the config in force (persisted atomically as `config.json`),
//! the counters journal (`counters.json`) that makes stats cumulative per epoch, and the data
//! plane's replay filter (`replay-filter.bin`, saved every few seconds and at shutdown).
//!
//! Epochs: at start, if the journal says the last run ended cleanly, the node continues that
//! epoch from the saved totals; otherwise (crash, first start) it begins a new epoch from zero.
//! The journal is marked unclean while running and rewritten clean on graceful shutdown. The
//! manager keeps a cursor per (node, epoch, counter), so nothing is counted twice.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::sync::{Mutex, RwLock};
use xray::api::{ConfigState, Stat};

const CONFIG_FILE: &str = "config.json";
const JOURNAL_FILE: &str = "counters.json";
/// The data plane's replay filter (see `engine::ReplayFile`).
const REPLAY_FILE: &str = "replay-filter.bin";

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    epoch: String,
    clean: bool,
    counters: BTreeMap<String, u64>,
}

/// The config in force.
#[derive(Debug, Clone)]
struct Current {
    config: xray::Config,
    version: String,
    applied_at: i64,
}

/// Why a push was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Invalid(#[from] xray::ParseError),
    #[error("the data plane refused the config: {0}")]
    Engine(#[from] engine::EngineError),
    #[error("storing the config failed: {0}")]
    Storage(#[from] std::io::Error),
}

pub struct NodeState {
    engine: engine::Engine,
    data_dir: PathBuf,
    epoch: String,
    /// Totals carried over from earlier runs of this epoch.
    base: BTreeMap<String, u64>,
    current: RwLock<Option<Current>>,
    apply_lock: Mutex<()>,
    started: Instant,
    /// Replaces wildcard inbound listen addresses (`--bind`).
    bind: Option<IpAddr>,
    /// Where the replay filter is kept.
    replay: engine::ReplayFile,
}

fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn new_epoch() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Writes `bytes` next to `path` (a `.tmp` file, fsynced); [`commit`] makes it the real file.
fn prepare(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(tmp)
}

/// Renames a prepared file over `path` and fsyncs the directory.
fn commit(tmp: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically and durably (mode `0600`).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = prepare(path, bytes)?;
    commit(&tmp, path)
}

impl NodeState {
    /// Loads the journal and the saved config (applying it) from `data_dir`.
    pub async fn open(data_dir: &Path, bind: Option<IpAddr>) -> anyhow::Result<NodeState> {
        let journal_path = data_dir.join(JOURNAL_FILE);
        let previous: Option<Journal> = match std::fs::read(&journal_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| tracing::warn!(error = %e, "counters journal unreadable; starting a new epoch"))
                .ok(),
            Err(_) => None,
        };
        let (epoch, base) = match previous {
            Some(j) if j.clean => (j.epoch, j.counters),
            Some(_) => {
                tracing::warn!("last run did not stop cleanly; starting a new counter epoch");
                (new_epoch(), BTreeMap::new())
            }
            None => (new_epoch(), BTreeMap::new()),
        };
        let running = Journal {
            epoch: epoch.clone(),
            clean: false,
            counters: base.clone(),
        };
        write_atomic(&journal_path, &serde_json::to_vec(&running)?)
            .with_context(|| format!("writing {}", journal_path.display()))?;

        let engine = engine::Engine::new();
        // Before any listener opens: a connection recorded before the restart stays refused.
        let replay = engine::ReplayFile::open(&engine, &data_dir.join(REPLAY_FILE));
        let state = NodeState {
            engine,
            data_dir: data_dir.to_owned(),
            epoch,
            base,
            current: RwLock::new(None),
            apply_lock: Mutex::new(()),
            started: Instant::now(),
            bind,
            replay,
        };
        if let Ok(bytes) = std::fs::read(data_dir.join(CONFIG_FILE)) {
            match xray::Config::from_json(&bytes) {
                Ok(config) => match state.engine.apply(&state.localized(&config)).await {
                    Ok(()) => {
                        let version = config.version();
                        tracing::info!(config.version = %version, "saved config applied");
                        *state.current.write().await = Some(Current {
                            config,
                            version,
                            applied_at: now_ms(),
                        });
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "saved config could not be applied; waiting for a push")
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "saved config is invalid; waiting for a push")
                }
            }
        }
        Ok(state)
    }

    /// The config the engine runs: `config` with wildcard listen addresses replaced by `--bind`.
    fn localized(&self, config: &xray::Config) -> xray::Config {
        let mut config = config.clone();
        if let Some(bind) = self.bind {
            for inbound in &mut config.inbounds {
                let wildcard = inbound
                    .listen
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_unspecified());
                if wildcard {
                    inbound.listen = bind.to_string();
                }
            }
        }
        config
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Validates, applies and persists a pushed config. The same config again is a no-op; on any
    /// error the config in force stays as it was.
    pub async fn apply(&self, body: &[u8]) -> Result<ConfigState, ApplyError> {
        self.apply_with(body, false).await
    }

    /// The manual restart (`POST /v1/configs?restart=true`): validates a pushed config and runs it
    /// rebuilt from scratch ([`engine::Engine::restart`]), even when it is the config in force;
    /// it is persisted and its `applied_at` renewed, and the answer says `changed: true`. The
    /// counters (and so the epoch's totals), the replay filter and the live sessions of users the
    /// config still allows are kept. On any error the config in force stays as it was.
    pub async fn restart(&self, body: &[u8]) -> Result<ConfigState, ApplyError> {
        self.apply_with(body, true).await
    }

    async fn apply_with(&self, body: &[u8], restart: bool) -> Result<ConfigState, ApplyError> {
        let config = xray::Config::from_json(body)?;
        let version = config.version();
        let _guard = self.apply_lock.lock().await;
        if let Some(cur) = self.current.read().await.as_ref() {
            if cur.version == version && !restart {
                return Ok(state_of(Some(cur), false));
            }
        }
        // Stage the file first (so a full disk refuses the push before anything changes), apply,
        // then make the staged file the config in force.
        let path = self.data_dir.join(CONFIG_FILE);
        let tmp = prepare(&path, &config.to_canonical_json())?;
        let localized = self.localized(&config);
        let applied = if restart {
            self.engine.restart(&localized).await
        } else {
            self.engine.apply(&localized).await
        };
        if let Err(e) = applied {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        commit(&tmp, &path)?;
        if restart {
            tracing::info!(config.version = %version, "config re-applied from scratch (restart)");
        } else {
            tracing::info!(config.version = %version, "config applied");
        }
        let cur = Current {
            config,
            version,
            applied_at: now_ms(),
        };
        let state = state_of(Some(&cur), true);
        *self.current.write().await = Some(cur);
        Ok(state)
    }

    /// What runs now.
    pub async fn config_state(&self) -> ConfigState {
        state_of(self.current.read().await.as_ref(), false)
    }

    pub async fn config_version(&self) -> Option<String> {
        self.current
            .read()
            .await
            .as_ref()
            .map(|c| c.version.clone())
    }

    /// Cumulative counters of this epoch.
    pub fn totals(&self) -> BTreeMap<String, u64> {
        let mut totals = self.base.clone();
        for (name, value) in self.engine.counters() {
            *totals.entry(name).or_default() += value;
        }
        totals
    }

    pub fn stats(&self) -> Vec<Stat> {
        self.totals()
            .into_iter()
            .map(|(name, value)| Stat { name, value })
            .collect()
    }

    /// The replay filter's file, to keep saving it while the node runs.
    pub fn replay_file(&self) -> engine::ReplayFile {
        self.replay.clone()
    }

    /// Stops the data plane and writes the final totals, marking the epoch clean.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        self.engine.shutdown().await;
        if let Err(e) = self.replay.save() {
            tracing::warn!(error = %e, "saving the replay filter failed");
        }
        let journal = Journal {
            epoch: self.epoch.clone(),
            clean: true,
            counters: self.totals(),
        };
        write_atomic(
            &self.data_dir.join(JOURNAL_FILE),
            &serde_json::to_vec(&journal)?,
        )
        .context("writing the counters journal")?;
        Ok(())
    }
}

fn state_of(cur: Option<&Current>, changed: bool) -> ConfigState {
    ConfigState {
        version: cur.map(|c| c.version.clone()),
        metadata: cur.and_then(|c| c.config.metadata.clone()),
        applied_at: cur.map(|c| c.applied_at),
        changed,
    }
}
