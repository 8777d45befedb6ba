//! The coordinator: named loops under one supervisor and one CancellationToken.
//!
//! - **sync**: on a change signal (debounced) and every `sync_interval`, builds all configs from
//!   one snapshot, applies the manager's own to the local engine, and pushes each node whose
//!   applied version differs (or whose last push was not direct) in parallel, bounded.
//! - **pull**: every `pull_interval`, pulls every node's counters in parallel and the local
//!   engine's, and applies them exactly once (see `accounting`). A node may count only what the
//!   writer generated for it (its users and tags), with bounded deltas.
//! - **watchdog**: a node without a successful pull for `pull_timeout` is marked `unavailable`.
//!
//! Health changes re-run sync, so balancers hold only healthy nodes. One slow node never delays
//! another: every call has a timeout and runs concurrently.
//!
//! A node whose certificate is not the pinned one is refused before anything is sent: push and
//! pull status become `unavailable`, `last_error` names both fingerprints and the presented one is
//! kept for the operator to re-pin. Later passes try again (and are refused again) until then.

use crate::accounting::{self, Expected, LOCAL_NODE};
use crate::entity::node::{self, NodeStatus};
use crate::entity::user;
use crate::events::{self, Event, Events, UserLive};
use crate::node_client::{ClientError, NodeClient, Reached, Route, Target};
use crate::services::{settings, Changes};
use crate::writer::Snapshot;
use crate::{util, Result};
use futures::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Timing and fan-out of the loops.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub pull_interval: Duration,
    pub pull_timeout: Duration,
    pub sync_interval: Duration,
    pub debounce: Duration,
    pub concurrency: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            pull_interval: Duration::from_secs(10),
            pull_timeout: Duration::from_secs(60),
            sync_interval: Duration::from_secs(10),
            debounce: Duration::from_millis(200),
            concurrency: 32,
        }
    }
}

/// Drives configs out and counters in.
pub struct Coordinator {
    db: DatabaseConnection,
    events: Events,
    changes: Changes,
    client: Arc<NodeClient>,
    engine: Option<engine::Engine>,
    cfg: CoordinatorConfig,
    /// Counter epoch of the local engine: counters restart with the process.
    local_epoch: String,
    started_at: i64,
    local_version: Mutex<Option<String>>,
}

impl Coordinator {
    pub(crate) fn new(
        db: DatabaseConnection,
        events: Events,
        changes: Changes,
        client: Arc<NodeClient>,
        engine: Option<engine::Engine>,
        cfg: CoordinatorConfig,
    ) -> Coordinator {
        Coordinator {
            db,
            events,
            changes,
            client,
            engine,
            cfg,
            local_epoch: util::random_hex(8),
            started_at: util::now_ms(),
            local_version: Mutex::new(None),
        }
    }

    /// Runs the loops until `cancel`; then flushes the local counters once more.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let sync = tokio::spawn(self.clone().sync_loop(cancel.clone()));
        let pull = tokio::spawn(self.clone().pull_loop(cancel.clone()));
        let watchdog = tokio::spawn(self.clone().watchdog_loop(cancel.clone()));
        for (name, task) in [("sync", sync), ("pull", pull), ("watchdog", watchdog)] {
            if let Err(e) = task.await {
                tracing::error!(loop_name = name, error = %e, "coordinator loop panicked");
            }
        }
        if let Err(e) = self.pull_local().await {
            tracing::error!(error = %e, "final flush of local counters failed");
        }
        tracing::info!("coordinator stopped");
    }

    async fn sync_loop(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.sync_interval);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.changes.notified() => {
                    // Debounce: a burst of edits makes one sync.
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(self.cfg.debounce) => {}
                    }
                }
                _ = tick.tick() => {}
            }
            if let Err(e) = self.sync_once().await {
                tracing::error!(error = %e, "config sync failed");
            }
        }
    }

    async fn pull_loop(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.pull_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.pull_once().await {
                tracing::error!(error = %e, "stats pull failed");
            }
        }
    }

    async fn watchdog_loop(self: Arc<Self>, cancel: CancellationToken) {
        let period =
            (self.cfg.pull_timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.watchdog_once().await {
                tracing::error!(error = %e, "pull watchdog failed");
            }
        }
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot {
            settings: settings::load(&self.db).await?,
            users: user::Entity::find()
                .filter(user::Column::Enabled.eq(true))
                .order_by_asc(user::Column::Id)
                .all(&self.db)
                .await?,
            nodes: node::Entity::find()
                .order_by_asc(node::Column::Id)
                .all(&self.db)
                .await?,
        })
    }

    /// One reconciliation pass: local engine, then every node that needs it.
    pub async fn sync_once(&self) -> Result<()> {
        let snap = self.snapshot().await?;
        self.apply_local(&snap).await;
        let proxy = snap.settings.proxy_url.clone();
        let jobs: Vec<_> = snap
            .nodes
            .iter()
            .filter_map(|n| {
                let config = snap.node_config(n);
                let version = config.version();
                let up_to_date = n.applied_version.as_deref() == Some(&version)
                    && n.push_status == NodeStatus::Available;
                (!up_to_date).then(|| (n.clone(), config, version))
            })
            .collect();
        futures::stream::iter(jobs)
            .for_each_concurrent(self.cfg.concurrency, |(n, config, version)| {
                let proxy = proxy.clone();
                async move {
                    if let Err(e) = self.push(&n, &config, &version, &proxy).await {
                        tracing::error!(node.id = n.id, error = %e, "recording a push failed");
                    }
                }
            })
            .await;
        Ok(())
    }

    async fn apply_local(&self, snap: &Snapshot) {
        let Some(engine) = &self.engine else { return };
        let config = snap.local_config();
        let version = config.version();
        if self
            .local_version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            == Some(&version)
        {
            return;
        }
        match engine.apply(&config).await {
            Ok(()) => {
                tracing::info!(config.version = %version, "local config applied");
                *self.local_version.lock().unwrap_or_else(|p| p.into_inner()) = Some(version);
            }
            Err(e) => {
                tracing::error!(config.version = %version, error = %e, "local config rejected by the engine")
            }
        }
    }

    async fn push(
        &self,
        n: &node::Model,
        config: &xray::Config,
        version: &str,
        proxy: &str,
    ) -> Result<()> {
        let body = config.to_canonical_json();
        let result = match Target::of(n) {
            Ok(target) => self.client.push(&target, body, proxy).await,
            Err(e) => Err(e),
        };
        if let Err(e @ ClientError::CertificateChanged { .. }) = &result {
            return self.refuse_certificate(n, e).await;
        }
        let now = util::now_ms();
        let mut update = node::Entity::update_many().filter(node::Column::Id.eq(n.id));
        let status = match &result {
            Ok((reached, state)) => {
                let route = &reached.route;
                if state.version.as_deref() != Some(version) {
                    tracing::warn!(node.id = n.id, expected = %version, got = ?state.version, "node reports another version");
                }
                let status = if *route == Route::Direct {
                    NodeStatus::Available
                } else {
                    NodeStatus::Dirty
                };
                tracing::info!(node.id = n.id, config.version = %version, status = status.as_str(), "config pushed");
                update = update
                    .col_expr(node::Column::PushedAt, Expr::value(now))
                    .col_expr(
                        node::Column::AppliedVersion,
                        Expr::value(state.version.clone()),
                    )
                    .col_expr(node::Column::LastError, Expr::value(Option::<String>::None));
                status
            }
            Err(e) => {
                tracing::warn!(node.id = n.id, error = %e, "config push failed");
                update = update.col_expr(node::Column::LastError, Expr::value(Some(e.to_string())));
                NodeStatus::Unavailable
            }
        };
        update
            .col_expr(node::Column::PushStatus, Expr::value(status.as_str()))
            .exec(&self.db)
            .await?;
        if let Ok((reached, _)) = &result {
            self.after_call(n, reached).await?;
        }
        if status.is_reachable() != n.push_status.is_reachable() {
            // Health changed: balancers must follow.
            self.changes.notify();
        }
        self.emit_node(n.id).await
    }

    /// Pulls every node and the local engine once.
    pub async fn pull_once(&self) -> Result<()> {
        // One snapshot: what the writer generates for each node is what it may count.
        let snap = self.snapshot().await?;
        let proxy = snap.settings.proxy_url.clone();
        let jobs: Vec<_> = snap
            .nodes
            .iter()
            .map(|n| (n.clone(), Expected::from_config(&snap.node_config(n))))
            .collect();
        futures::stream::iter(jobs)
            .for_each_concurrent(self.cfg.concurrency, |(n, expected)| {
                let proxy = proxy.clone();
                async move {
                    if let Err(e) = self.pull_node(&n, &expected, &proxy).await {
                        tracing::error!(node.id = n.id, error = %e, "recording a pull failed");
                    }
                }
            })
            .await;
        self.pull_local().await
    }

    async fn pull_node(&self, n: &node::Model, expected: &Expected, proxy: &str) -> Result<()> {
        let result = match Target::of(n) {
            Ok(target) => self.client.stats(&target, proxy).await,
            Err(e) => Err(e),
        };
        let (reached, reply) = match result {
            Ok(ok) => ok,
            Err(e @ ClientError::CertificateChanged { .. }) => {
                return self.refuse_certificate(n, &e).await;
            }
            Err(e) => {
                tracing::debug!(node.id = n.id, error = %e, "stats pull failed");
                return Ok(());
            }
        };
        self.after_call(n, &reached).await?;
        if let Some(refused) = reply.refused_calls {
            node::Entity::update_many()
                .col_expr(
                    node::Column::RefusedCalls,
                    Expr::value(i64::try_from(refused).unwrap_or(i64::MAX)),
                )
                .filter(node::Column::Id.eq(n.id))
                .exec(&self.db)
                .await?;
        }
        let applied =
            accounting::apply(&self.db, n.id, &reply.epoch, &reply.stats, expected).await?;
        if reply.config_version != n.applied_version {
            // The node runs something else than we think (restarted with an old file, wiped…).
            node::Entity::update_many()
                .col_expr(
                    node::Column::AppliedVersion,
                    Expr::value(reply.config_version.clone()),
                )
                .filter(node::Column::Id.eq(n.id))
                .exec(&self.db)
                .await?;
            self.changes.notify();
        }
        if n.pull_status != NodeStatus::Available {
            self.changes.notify();
        }
        self.after_accounting(&applied).await?;
        self.emit_node(n.id).await
    }

    async fn pull_local(&self) -> Result<()> {
        let Some(engine) = &self.engine else {
            return Ok(());
        };
        let stats: Vec<xray::api::Stat> = engine
            .counters()
            .into_iter()
            .map(|(name, value)| xray::api::Stat { name, value })
            .collect();
        let applied = accounting::apply(
            &self.db,
            LOCAL_NODE,
            &self.local_epoch,
            &stats,
            &Expected::Local,
        )
        .await?;
        self.after_accounting(&applied).await
    }

    async fn after_accounting(&self, applied: &accounting::Applied) -> Result<()> {
        if !applied.user_bytes.is_empty() {
            let users = user::Entity::find()
                .filter(user::Column::Id.is_in(applied.user_bytes.keys().copied()))
                .all(&self.db)
                .await?;
            for u in users {
                self.events.send(Event::UserUsage(UserLive {
                    id: u.id,
                    usage_bytes: u.usage_bytes,
                    enabled: u.enabled,
                }));
            }
        }
        if !applied.disabled.is_empty() {
            self.events.send(Event::UsersChanged);
            self.changes.notify();
        }
        Ok(())
    }

    /// Marks nodes without a successful pull for `pull_timeout` as unavailable.
    pub async fn watchdog_once(&self) -> Result<()> {
        let timeout = i64::try_from(self.cfg.pull_timeout.as_millis()).unwrap_or(i64::MAX);
        let cutoff = util::now_ms().saturating_sub(timeout);
        if self.started_at > cutoff {
            return Ok(()); // give every node one timeout after start
        }
        let stale = node::Entity::find()
            .filter(node::Column::PullStatus.ne(NodeStatus::Unavailable.as_str()))
            .filter(node::Column::PulledAt.lt(cutoff))
            .all(&self.db)
            .await?;
        for n in stale
            .iter()
            .filter(|n| n.created_at < cutoff || n.pulled_at > 0)
        {
            node::Entity::update_many()
                .col_expr(
                    node::Column::PullStatus,
                    Expr::value(NodeStatus::Unavailable.as_str()),
                )
                .filter(node::Column::Id.eq(n.id))
                .exec(&self.db)
                .await?;
            tracing::warn!(
                node.id = n.id,
                last_pull = n.pulled_at,
                "node missed its pulls; marked unavailable"
            );
            self.changes.notify();
            self.emit_node(n.id).await?;
        }
        Ok(())
    }

    /// Records a refused certificate: the node is `unavailable` (push and pull) with the error,
    /// and the presented fingerprint is kept for the operator.
    async fn refuse_certificate(&self, n: &node::Model, e: &ClientError) -> Result<()> {
        let ClientError::CertificateChanged { presented, .. } = e else {
            return Ok(());
        };
        let error = e.to_string();
        tracing::warn!(node.id = n.id, tls.presented = %presented, error = %error, "node presented another certificate; nothing sent");
        let unavailable = NodeStatus::Unavailable.as_str();
        node::Entity::update_many()
            .col_expr(node::Column::PushStatus, Expr::value(unavailable))
            .col_expr(node::Column::PullStatus, Expr::value(unavailable))
            .col_expr(node::Column::LastError, Expr::value(Some(error.clone())))
            .col_expr(
                node::Column::PresentedFingerprint,
                Expr::value(Some(presented.to_string())),
            )
            .filter(node::Column::Id.eq(n.id))
            .exec(&self.db)
            .await?;
        if n.is_healthy() {
            // Health changed: balancers must follow.
            self.changes.notify();
        }
        self.emit_node(n.id).await
    }

    /// The bookkeeping of a successful call (first-use pin, promoted token).
    async fn after_call(&self, n: &node::Model, reached: &Reached) -> Result<()> {
        crate::services::nodes::after_call(&self.db, n, reached).await?;
        Ok(())
    }

    async fn emit_node(&self, id: i64) -> Result<()> {
        if let Some(n) = node::Entity::find_by_id(id).one(&self.db).await? {
            self.events.send(events::node(&n));
        }
        Ok(())
    }
}

impl NodeStatus {
    /// Available or dirty: a push got through.
    pub fn is_reachable(self) -> bool {
        matches!(self, NodeStatus::Available | NodeStatus::Dirty)
    }
}
