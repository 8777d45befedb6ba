//! Keeping the replay filter on disk, so a recorded classic-AEAD connection stays refused after
//! the process restarts: restored before any port opens, saved every few seconds while it
//! changes and once more at shutdown. The file is written atomically (temporary file, fsync,
//! rename) with mode 0600.

use crate::Engine;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the filter is saved while it changes; a crash loses at most this much.
pub const SAVE_EVERY: Duration = Duration::from_secs(10);

/// The replay filter of one engine and the file that keeps it.
#[derive(Clone)]
pub struct ReplayFile {
    engine: Engine,
    path: PathBuf,
    saved: Arc<AtomicU64>,
}

impl ReplayFile {
    /// Restores `engine`'s filter from `path` (a missing or damaged file restores nothing).
    /// Call before the first config is applied.
    pub fn open(engine: &Engine, path: &Path) -> ReplayFile {
        if let Ok(saved) = std::fs::read(path) {
            let restored = engine.restore_replay_filter(&saved);
            tracing::info!(salts = restored, file = %path.display(), "replay filter restored");
        }
        ReplayFile {
            engine: engine.clone(),
            path: path.to_owned(),
            saved: Arc::new(AtomicU64::new(engine.replay_filter_generation())),
        }
    }

    /// Saves the filter if it learned salts since the last save.
    pub fn save(&self) -> std::io::Result<()> {
        let generation = self.engine.replay_filter_generation();
        if generation == self.saved.load(Ordering::Relaxed) {
            return Ok(());
        }
        let tmp = self.path.with_extension("tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&self.engine.export_replay_filter())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        self.saved.store(generation, Ordering::Relaxed);
        Ok(())
    }

    /// Saves every [`SAVE_EVERY`] (off the async threads) until `cancel`, then once more.
    pub async fn keep(self, cancel: CancellationToken) {
        loop {
            let stop = tokio::select! {
                _ = cancel.cancelled() => true,
                _ = tokio::time::sleep(SAVE_EVERY) => false,
            };
            let file = self.clone();
            match tokio::task::spawn_blocking(move || file.save()).await {
                Ok(Err(e)) => tracing::warn!(error = %e, "saving the replay filter failed"),
                Err(e) => tracing::warn!(error = %e, "saving the replay filter failed"),
                Ok(Ok(())) => {}
            }
            if stop {
                return;
            }
        }
    }
}
