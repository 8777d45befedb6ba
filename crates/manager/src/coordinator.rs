//! The coordinator: named loops under one supervisor and one CancellationToken.
//!
//! - **sync**: on a change signal (debounced) and every `sync_interval`, builds all configs from
//!   one snapshot, records each node's desired version (see [`crate::desired`]; a node whose
//!   version moved gets a node event at once, before any push), applies the manager's own config
//!   to the local engine, and pushes each node whose applied version differs (or whose last push
//!   was not direct) in parallel, bounded.
//! - **pull**: every `pull_interval`, pulls every node's counters in parallel and the local
//!   engine's, and applies them exactly once (see `accounting`). A node may count only what the
//!   writer generated for it (its users and tags), with bounded deltas.
//!   Users whose expiry has passed are then disabled (reason `expired`).
//! - **watchdog**: a node without a successful pull for `pull_timeout` is marked `unavailable`.
//!
//! Outside the loops: [`Coordinator::restart_node`] (the manual restart) pushes one node's full
//! config at once with the restart flag and records the outcome as any push; pushes of a sync pass
//! and a restart never interleave, so a restart never lands an older config after a newer one.
//! Both record the desired version they computed, which is what drift is shown against.
//!
//! Each loop runs under [`supervise`]: a loop that panics is logged with its name and the panic
//! message and started again after a pause (1 s, doubling up to 30 s while it keeps panicking),
//! so one bad pass cannot leave, say, the watchdog running without the pull loop. On cancel the
//! loops end, the local engine stops and its counters are flushed one last time.
//!
//! Health changes re-run sync, so balancers hold only healthy nodes. One slow node never delays
//! another: every call has a timeout and runs concurrently.
//!
//! A node whose certificate is not the pinned one is refused before anything is sent: push and
//! pull status become `unavailable`, `last_error` names both fingerprints and the presented one is
//! kept for the operator to re-pin. Later passes try again (and are refused again) until then.

use crate::accounting::{self, Expected, LOCAL_NODE};
use crate::desired::DesiredVersions;
use crate::entity::node::{self, NodeStatus};
use crate::entity::user;
use crate::events::{self, Event, Events, UserLive};
use crate::node_client::{ClientError, NodeClient, Reached, Route, Target};
use crate::services::{settings, Changes, Ctx};
use crate::writer::Snapshot;
use crate::{util, Result, ServiceError};
use futures::future::BoxFuture;
use futures::{FutureExt as _, StreamExt};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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

/// How one of the coordinator's loops is started: a fresh future for every (re)start.
pub type LoopFn = fn(Arc<Coordinator>, CancellationToken) -> BoxFuture<'static, ()>;

/// When [`supervise`] restarts a loop that panicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Pause before the first restart, and again after a healthy run.
    pub first: Duration,
    /// Longest pause: each panic in a row doubles the pause up to this.
    pub max: Duration,
    /// A run that lasted this long before panicking was healthy: the pause starts over.
    pub healthy: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(30),
            healthy: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The pause before restarting a loop that panicked after running for `ran`, when the pause
    /// before its last restart was `last` (`None`: it never panicked before).
    pub fn pause(&self, last: Option<Duration>, ran: Duration) -> Duration {
        match last {
            Some(last) if ran < self.healthy => last.saturating_mul(2).min(self.max),
            _ => self.first.min(self.max),
        }
    }
}

/// Runs the loop `make` builds until `cancel` or until the loop returns. A loop that panics is
/// logged (`name` and the panic message) and started again with a fresh `make()` after a pause
/// (see [`Backoff`]); cancellation during the pause ends supervision.
pub async fn supervise<F, Fut>(
    name: &'static str,
    cancel: CancellationToken,
    backoff: Backoff,
    mut make: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut last_pause = None;
    while !cancel.is_cancelled() {
        let started = Instant::now();
        let Err(panic) = AssertUnwindSafe(make()).catch_unwind().await else {
            return;
        };
        let pause = backoff.pause(last_pause, started.elapsed());
        last_pause = Some(pause);
        tracing::error!(
            loop_name = name,
            panic = panic_message(panic.as_ref()),
            restart_in = ?pause,
            "coordinator loop panicked; restarting it"
        );
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// The message of a panic payload (`panic!` with a literal or a format string).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a panic without a message)"
    }
}

/// Drives configs out and counters in.
pub struct Coordinator {
    db: DatabaseConnection,
    events: Events,
    changes: Changes,
    /// Each node's desired version, as of the last pass or restart (shared with the services).
    desired: DesiredVersions,
    client: Arc<NodeClient>,
    engine: Option<engine::Engine>,
    cfg: CoordinatorConfig,
    /// Counter epoch of the local engine: counters restart with the process.
    local_epoch: String,
    started_at: i64,
    local_version: Mutex<Option<String>>,
    /// Held by a sync pass and by a manual restart while they push.
    push_lock: tokio::sync::Mutex<()>,
}

impl Coordinator {
    pub(crate) fn new(
        ctx: Ctx,
        client: Arc<NodeClient>,
        engine: Option<engine::Engine>,
        cfg: CoordinatorConfig,
    ) -> Coordinator {
        Coordinator {
            db: ctx.db,
            events: ctx.events,
            changes: ctx.changes,
            desired: ctx.desired,
            client,
            engine,
            cfg,
            local_epoch: util::random_hex(8),
            started_at: util::now_ms(),
            local_version: Mutex::new(None),
            push_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The coordinator's loops by name. [`Coordinator::run`] starts each one through
    /// [`supervise`], so a loop that panics is logged and restarted, never silently gone.
    pub const LOOPS: [(&'static str, LoopFn); 3] = [
        ("sync", |c, cancel| Box::pin(c.sync_loop(cancel))),
        ("pull", |c, cancel| Box::pin(c.pull_loop(cancel))),
        ("watchdog", |c, cancel| Box::pin(c.watchdog_loop(cancel))),
    ];

    /// Runs the loops, each under [`supervise`], until `cancel`. Then stops the local engine
    /// (its listeners close and its sessions end, so nothing more is counted) and flushes its
    /// counters once more: every byte the engine counted is in the database when this returns.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let loops: Vec<_> = Self::LOOPS
            .into_iter()
            .map(|(name, make)| {
                let (this, token) = (self.clone(), cancel.clone());
                let restart = move || make(this.clone(), token.clone());
                (
                    name,
                    tokio::spawn(supervise(name, cancel.clone(), Backoff::default(), restart)),
                )
            })
            .collect();
        for (name, task) in loops {
            if let Err(e) = task.await {
                tracing::error!(loop_name = name, error = %e, "coordinator loop supervisor failed");
            }
        }
        if let Some(engine) = &self.engine {
            engine.shutdown().await;
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

    /// One reconciliation pass: every node's desired version (an event for each node whose
    /// version moved), the local engine, then every node that needs a push.
    pub async fn sync_once(&self) -> Result<()> {
        let _pushing = self.push_lock.lock().await;
        let snap = self.snapshot().await?;
        let configs: Vec<_> = snap
            .nodes
            .iter()
            .map(|n| {
                let config = snap.node_config(n);
                let version = config.version();
                (n, config, version)
            })
            .collect();
        let moved = self
            .desired
            .replace(configs.iter().map(|(n, _, v)| (n.id, v.clone())).collect());
        for (n, ..) in configs.iter().filter(|(n, ..)| moved.contains(&n.id)) {
            // Drift shows at once, not only after the push (which may wait for a timeout).
            self.events.send(events::node(n, &self.desired));
        }
        self.apply_local(&snap).await;
        let proxy = snap.settings.proxy_url.clone();
        let jobs: Vec<_> = configs
            .into_iter()
            .filter(|(n, _, version)| {
                n.applied_version.as_deref() != Some(version)
                    || n.push_status != NodeStatus::Available
            })
            .map(|(n, config, version)| (n.clone(), config, version))
            .collect();
        futures::stream::iter(jobs)
            .for_each_concurrent(self.cfg.concurrency, |(n, config, version)| {
                let proxy = proxy.clone();
                async move {
                    if let Err(e) = self.push(&n, &config, &version, &proxy, false).await {
                        tracing::error!(node.id = n.id, error = %e, "recording a push failed");
                    }
                }
            })
            .await;
        Ok(())
    }

    /// The manual restart of node `id`: pushes its full current config now with the restart
    /// flag (`POST /v1/configs?restart=true`: the node rebuilds everything from that config, even
    /// when it runs that version already, keeping its counters, its replay filter and the sessions
    /// the config still allows). The outcome is recorded as any push's (push status, `pushed_at`,
    /// `applied_version`, `last_error`, a node event; a refused certificate as in a pass). The
    /// version pushed becomes the node's desired version. Returns the node's row after the push,
    /// with `desired_version` set. Waits for a sync pass that is pushing to finish first.
    ///
    /// Errors: [`ServiceError::NotFound`] for an unknown id; [`ServiceError::Unreachable`] when
    /// the push failed (not reached, refused, or the node rejected the config), after recording it.
    pub async fn restart_node(&self, id: i64) -> Result<node::Model> {
        let _pushing = self.push_lock.lock().await;
        let snap = self.snapshot().await?;
        let n = snap
            .nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| ServiceError::NotFound(format!("node {id}")))?;
        let config = snap.node_config(n);
        let version = config.version();
        // Before the push, so the event the push sends carries it.
        self.desired.set(id, version.clone());
        tracing::info!(node.id = id, config.version = %version, "manual restart of a node");
        let failed = self
            .push(n, &config, &version, &snap.settings.proxy_url, true)
            .await?;
        if let Some(e) = failed {
            return Err(ServiceError::Unreachable(e));
        }
        let mut row = node::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("node {id}")))?;
        row.desired_version = Some(version);
        Ok(row)
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

    /// Pushes `config` (of `version`) to `n`, with the restart flag when `restart`, and records
    /// the outcome; returns the error of a failed push (recorded already).
    async fn push(
        &self,
        n: &node::Model,
        config: &xray::Config,
        version: &str,
        proxy: &str,
        restart: bool,
    ) -> Result<Option<ClientError>> {
        let body = config.to_canonical_json();
        let result = match Target::of(n) {
            Ok(target) => self.client.push(&target, body, proxy, restart).await,
            Err(e) => Err(e),
        };
        let result = match result {
            Err(e @ ClientError::CertificateChanged { .. }) => {
                self.refuse_certificate(n, &e).await?;
                self.audit_push(n, version, restart, Some(&e)).await;
                return Ok(Some(e));
            }
            r => r,
        };
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
                tracing::info!(node.id = n.id, config.version = %version, status = status.as_str(), restart, "config pushed");
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
        self.audit_push(n, version, restart, result.as_ref().err())
            .await;
        if let Ok((reached, _)) = &result {
            self.after_call(n, reached).await?;
        }
        if status.is_reachable() != n.push_status.is_reachable() {
            // Health changed: balancers must follow.
            self.changes.notify();
        }
        self.emit_node(n.id).await?;
        Ok(result.err())
    }

    /// Records a push in the audit log, by whoever runs it (the manager itself in a sync pass,
    /// the administrator of a manual restart). A failed push is recorded when it starts a run of
    /// failures or fails differently, not on every retry.
    async fn audit_push(
        &self,
        n: &node::Model,
        version: &str,
        restart: bool,
        error: Option<&ClientError>,
    ) {
        use crate::services::audit::{self, Changes, Entry, Outcome};
        let mut changes = Changes::new()
            .field("version", &n.applied_version, version)
            .field("restart", false, restart);
        let outcome = match error {
            None => Outcome::Ok,
            Some(e) => {
                let message = e.to_string();
                let repeated = !n.push_status.is_reachable()
                    && n.push_status != NodeStatus::Processing
                    && n.last_error.as_deref() == Some(message.as_str());
                if repeated && !restart {
                    return;
                }
                changes = changes.field("error", (), message);
                Outcome::Failed
            }
        };
        let entry = Entry::new("node.push")
            .object("node", Some(n.id), &n.name)
            .changes(changes)
            .outcome(outcome);
        audit::write(&self.db, &audit::actor(), entry).await;
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
        let local = self.pull_local().await;
        // Expiry is checked on the same beat: an expired user's sessions end within one pull
        // period plus the sync that follows, as a quota's do.
        let now = util::now_ms();
        let expired = crate::services::users::expire_due(&self.db, now).await?;
        // Scheduled usage resets, on the same beat (a user the quota disabled is back within one
        // pull period plus the sync that follows).
        let reset = crate::resets::reset_due(&self.db, now).await?;
        let pruned = crate::history::prune(&self.db, now).await?;
        if pruned > 0 {
            tracing::debug!(rows = pruned, "old usage history removed");
        }
        let pruned = crate::services::audit::prune(&self.db, now).await?;
        if pruned > 0 {
            tracing::debug!(rows = pruned, "old audit entries removed");
        }
        if !expired.is_empty() || !reset.is_empty() {
            self.events.send(Event::UsersChanged);
            self.changes.notify();
        }
        local
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
            self.events.send(events::node(&n, &self.desired));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const QUICK: Backoff = Backoff {
        first: Duration::from_millis(5),
        max: Duration::from_millis(20),
        healthy: Duration::from_secs(60),
    };

    /// Polls `f` every 10 ms until it holds; panics after 10 s.
    async fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A loop that panics on its first `panics` runs, then runs until `cancel`.
    fn flaky(
        runs: &Arc<AtomicUsize>,
        panics: usize,
        cancel: &CancellationToken,
    ) -> impl FnMut() -> BoxFuture<'static, ()> {
        let (runs, cancel) = (runs.clone(), cancel.clone());
        move || {
            let (runs, cancel) = (runs.clone(), cancel.clone());
            Box::pin(async move {
                let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                if run <= panics {
                    panic!("injected panic in run {run}");
                }
                cancel.cancelled().await;
            })
        }
    }

    #[tokio::test]
    async fn a_panicking_loop_is_restarted_and_stops_on_cancel() {
        let runs = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let supervisor = tokio::spawn(supervise(
            "flaky",
            cancel.clone(),
            QUICK,
            flaky(&runs, 3, &cancel),
        ));
        until("the fourth run", || runs.load(Ordering::SeqCst) == 4).await;
        assert!(!supervisor.is_finished(), "the healthy run goes on");
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), supervisor)
            .await
            .expect("supervision ends on cancel")
            .expect("the supervisor itself never panics");
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_loop_that_always_panics_is_retried_until_cancel() {
        let runs = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let supervisor = tokio::spawn(supervise(
            "broken",
            cancel.clone(),
            QUICK,
            flaky(&runs, usize::MAX, &cancel),
        ));
        until("five runs", || runs.load(Ordering::SeqCst) >= 5).await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), supervisor)
            .await
            .expect("supervision ends on cancel, also while pausing")
            .expect("the supervisor itself never panics");
        let after_cancel = runs.load(Ordering::SeqCst);
        // Ended: nothing restarts it any more.
        assert!(cancel.is_cancelled());
        assert_eq!(runs.load(Ordering::SeqCst), after_cancel);
    }

    #[tokio::test]
    async fn a_cancelled_supervisor_starts_nothing_and_a_finished_loop_is_not_restarted() {
        let runs = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        cancel.cancel();
        supervise("never", cancel.clone(), QUICK, flaky(&runs, 0, &cancel)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 0);

        let live = CancellationToken::new();
        let counted = runs.clone();
        supervise("once", live.clone(), QUICK, move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!live.is_cancelled());
    }

    #[test]
    fn the_pause_doubles_up_to_the_max_and_starts_over_after_a_healthy_run() {
        let b = Backoff::default();
        let quick = Duration::from_millis(100);
        assert_eq!(b.pause(None, quick), Duration::from_secs(1));
        assert_eq!(
            b.pause(Some(Duration::from_secs(1)), quick),
            Duration::from_secs(2)
        );
        assert_eq!(
            b.pause(Some(Duration::from_secs(16)), quick),
            Duration::from_secs(30)
        );
        assert_eq!(
            b.pause(Some(Duration::from_secs(30)), quick),
            Duration::from_secs(30)
        );
        assert_eq!(
            b.pause(Some(Duration::from_secs(30)), Duration::from_secs(60)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn panic_messages_are_read_from_both_payload_kinds() {
        let literal = std::panic::catch_unwind(|| panic!("plain")).expect_err("panics");
        assert_eq!(panic_message(literal.as_ref()), "plain");
        let n = 7;
        let formatted = std::panic::catch_unwind(|| panic!("run {n}")).expect_err("panics");
        assert_eq!(panic_message(formatted.as_ref()), "run 7");
    }

    #[test]
    fn every_loop_of_the_coordinator_is_supervised() {
        // `run` starts exactly the loops of this table, each through `supervise`.
        let names: Vec<&str> = Coordinator::LOOPS.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["sync", "pull", "watchdog"]);
    }

    #[tokio::test]
    async fn run_stops_the_local_engine_before_its_last_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine::Engine::new();
        let opts = crate::Options {
            database_url: crate::db::default_sqlite_url(dir.path()),
            admin_token: None,
            coordinator: CoordinatorConfig::default(),
            node_timeout: Duration::from_secs(1),
            trusted_proxies: Default::default(),
        };
        let m = crate::Manager::open(opts, Some(engine.clone()))
            .await
            .expect("open manager");
        let cancel = CancellationToken::new();
        let running = tokio::spawn(m.coordinator.clone().run(cancel.clone()));
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("run ends on cancel")
            .expect("run does not panic");
        let refused = engine.apply(&xray::Config::default()).await;
        assert!(
            matches!(refused, Err(engine::EngineError::ShutDown)),
            "the engine is shut down: {refused:?}"
        );
        m.db.close().await.expect("close");
    }
}
