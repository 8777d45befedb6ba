//! Nodes: registration (with an optional connection check and the certificate pin), edits,
//! deletion, internal key rotation; the secure channel's re-pin and token rotation live in
//! [`channel`]. Health fields are written by the coordinator, not here.

use super::audit::{Changes, Entry, Outcome};
use super::{settings, unique_violation, Ctx};
use crate::entity::node::{self, Entity as NodeEntity, NodeStatus};
use crate::entity::stats_cursor;
use crate::events::Event;
use crate::node_client::{Channel, ClientError, NodeClient, Target};
use crate::{history, util, Result, ServiceError};
use rand::Rng;
use rules::{input, Permission};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use serde::Deserialize;
use std::sync::Arc;
use xray::api::NodeInfo;

pub use daemon::tls::Fingerprint;
pub use node::Model as Node;

mod channel;
pub(crate) use channel::after_call;

/// The method of manager ↔ node links (relay hop and reverse tunnel).
pub const LINK_METHOD: xray::Method = xray::Method::Blake3Aes128Gcm;
/// Internal ports are drawn from this range.
const INTERNAL_PORTS: std::ops::RangeInclusive<u16> = 20000..=59999;

/// A node to register.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNode {
    /// Unique; `node-{id}` when absent or empty.
    #[serde(default)]
    pub name: Option<String>,
    pub host: String,
    pub http_port: u16,
    /// Generated (32 random bytes, hex) when absent.
    #[serde(default)]
    pub http_token: Option<String>,
    /// The SHA-256 fingerprint of the node's certificate, as the node printed it. Without it the
    /// manager pins the certificate the node presents at registration (or, when the node cannot
    /// be reached then, at the first successful push or pull).
    #[serde(default)]
    pub tls_fingerprint: Option<String>,
    /// The node API is plain HTTP (`arch-node --insecure-http`): nothing is pinned, tokens and
    /// configs cross the network in clear.
    #[serde(default)]
    pub insecure_http: bool,
    /// What a byte through the node counts for its users (0 to 100, three decimals); absent = 1.
    #[serde(default)]
    pub usage_multiplier: Option<f64>,
}

/// What the connection check learned about a node.
#[derive(Debug, Clone)]
pub struct CheckedNode {
    pub info: NodeInfo,
    /// The fingerprint of the certificate the node presented, for the operator to compare with
    /// the one the node printed (`None` over plain HTTP).
    pub fingerprint: Option<Fingerprint>,
}

/// A partial update; absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodePatch {
    pub name: Option<String>,
    pub host: Option<String>,
    pub http_port: Option<u16>,
    pub http_token: Option<String>,
    pub usage_multiplier: Option<f64>,
}

/// A port of the internal range that is not in `taken` and passes `usable`, scanning from a random
/// start so nodes spread over the range.
fn pick_port(taken: &[i32], usable: impl Fn(u16) -> bool) -> i32 {
    let taken: std::collections::HashSet<i32> = taken.iter().copied().collect();
    let (lo, hi) = (*INTERNAL_PORTS.start(), *INTERNAL_PORTS.end());
    let span = u32::from(hi - lo) + 1;
    let start = rand::thread_rng().gen_range(0..span);
    (0..span)
        .filter_map(|i| u16::try_from(u32::from(lo) + (start + i) % span).ok())
        .find(|p| !taken.contains(&i32::from(*p)) && usable(*p))
        .map_or(i32::from(lo), i32::from)
}

/// The connection check's verdict on a failed `/v1/info` call.
fn check_error(e: ClientError) -> ServiceError {
    match e {
        ClientError::Unauthorized => {
            ServiceError::invalid("http_token", "the node rejected this token")
        }
        // Whatever the checked address sent back stays out of the error (and so out of logs):
        // it may be anything, including an echo of the request's token.
        ClientError::Rejected { status, .. } => ServiceError::Unreachable(ClientError::Rejected {
            status,
            message: "(reply not kept)".into(),
        }),
        e => ServiceError::Unreachable(e),
    }
}

/// Whether another node already has this (normalised) host and port.
fn taken_by(others: &[Node], host: &str, port: u16) -> Result<()> {
    let clash = others.iter().any(|n| {
        n.http_port == i32::from(port) && input::host("host", &n.host).is_ok_and(|h| h == host)
    });
    if clash {
        return Err(ServiceError::conflict(
            "host",
            "a node with this host and HTTP port exists",
        ));
    }
    Ok(())
}

/// Whether another node already has this name.
fn name_taken(others: &[Node], name: &str) -> Result<()> {
    if others.iter().any(|n| n.name == name) {
        return Err(ServiceError::conflict(
            "name",
            "a node with this name exists",
        ));
    }
    Ok(())
}

/// `node-{id}`, or `node-{id}-2`, `-3`, … when another node was given that name.
fn default_name(others: &[Node], id: i64) -> String {
    let base = format!("node-{id}");
    let taken = |n: &str| others.iter().any(|o| o.name == n);
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|k| format!("{base}-{k}"))
        .find(|n| !taken(n))
        .unwrap_or(base)
}

/// Can the manager bind this port now (for its `internal-N` inbound)?
/// The audited fields of a node before and after a change (`None`: created or deleted): what the
/// operator sets, with the token and link keys recorded as changed, never by value.
fn node_changes(before: Option<&Node>, after: Option<&Node>) -> Changes {
    let view = |n: Option<&Node>| {
        n.map(|n| {
            serde_json::json!({
                "name": n.name,
                "host": n.host,
                "http_port": n.http_port,
                "usage_multiplier": f64::from(n.usage_multiplier_permille) / 1000.0,
                "insecure_http": n.insecure_http,
                "tls_fingerprint": n.tls_fingerprint,
                "relay_port": n.relay_port,
                "internal_port": n.internal_port,
                "http_token": n.http_token,
                "relay_key": n.relay_key,
                "internal_key": n.internal_key,
            })
        })
    };
    Changes::between(
        view(before),
        view(after),
        &["http_token", "relay_key", "internal_key"],
        &[],
    )
}

fn bindable(port: u16) -> bool {
    std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
}

/// Manages nodes.
#[derive(Clone)]
pub struct NodeService {
    pub(crate) ctx: Ctx,
    pub(crate) client: Arc<NodeClient>,
    /// The manager's own data plane, which holds the reverse portals.
    pub(crate) engine: Option<engine::Engine>,
    /// Pushes configs: the manual restart goes through it.
    pub(crate) coordinator: Arc<crate::Coordinator>,
}

impl NodeService {
    /// Ids of the nodes whose reverse bridge is connected to this manager now.
    pub fn reverse_connected(&self) -> std::collections::BTreeSet<i64> {
        self.engine
            .iter()
            .flat_map(|e| e.connected_portals())
            .filter_map(|tag| tag.strip_prefix("portal-")?.parse().ok())
            .collect()
    }

    /// Every node, by id, each with its `desired_version` as of the last sync pass (which runs
    /// right after every change, debounced, and every 10 s; see [`crate::desired`]): one query
    /// of the nodes, no snapshot of users.
    pub async fn list(&self) -> Result<Vec<Node>> {
        let nodes = NodeEntity::find()
            .order_by_asc(node::Column::Id)
            .all(&self.ctx.db)
            .await?;
        Ok(nodes
            .into_iter()
            .map(|n| self.ctx.desired.fill(n))
            .collect())
    }

    /// One node, with its `desired_version` as of the last sync pass (see [`NodeService::list`]).
    pub async fn get(&self, id: i64) -> Result<Node> {
        let n = NodeEntity::find_by_id(id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("node {id}")))?;
        Ok(self.ctx.desired.fill(n))
    }

    /// The manual restart ("push now / restart"): pushes the node's full current config at once,
    /// not waiting for the sync loop, with the restart flag (`POST /v1/configs?restart=true`),
    /// so the node rebuilds everything from it even when it runs that version already, keeping
    /// its counters, its replay filter and every session the config still allows. The outcome is
    /// recorded as any push's: `push_status`, `pushed_at`, `applied_version`, `last_error` and a
    /// node event on the broadcast. The version pushed becomes the node's `desired_version`.
    /// Returns the node after the push, with `desired_version` (equal to `applied_version` after
    /// a successful restart, unless the node runs an odd version). Waits for a sync pass that is
    /// pushing to finish first.
    ///
    /// Errors: `NotFound` for an unknown id; `Unreachable` (after recording the failed push:
    /// push status `unavailable`, `last_error`) when the node was not reached, refused the call
    /// or rejected the config, or presented another certificate than the pinned one.
    pub async fn restart(&self, id: i64) -> Result<Node> {
        self.ctx
            .authorize(Permission::Operate, "node.restart")
            .await?;
        let result = self.coordinator.restart_node(id).await;
        let entry = match &result {
            Ok(node) => Entry::new("node.restart")
                .object("node", Some(id), &node.name)
                .changes(Changes::new().field("version", (), &node.applied_version)),
            Err(ServiceError::NotFound(_)) => return result,
            Err(e) => Entry::new("node.restart")
                .object("node", Some(id), &format!("node {id}"))
                .changes(Changes::new().field("error", (), e.to_string()))
                .outcome(Outcome::Failed),
        };
        self.ctx.audit(entry).await;
        result
    }

    /// Asks the node for `/v1/info` with the token: the connection check before adding a node.
    /// Over TLS any certificate is accepted and its fingerprint returned, for the operator to
    /// compare with the one the node printed. The outcome is one short message of Arch's own;
    /// nothing the address answered is echoed.
    pub async fn check(
        &self,
        host: &str,
        http_port: u16,
        token: &str,
        insecure_http: bool,
    ) -> Result<CheckedNode> {
        self.ctx
            .authorize(Permission::Operate, "node.check")
            .await?;
        let host = input::host("host", host)?;
        input::port("http_port", http_port, false)?;
        let target = Target {
            base: node::node_base_url(&host, http_port, !insecure_http),
            channel: if insecure_http {
                Channel::Plain
            } else {
                Channel::FirstUse
            },
            token,
            pending_token: None,
        };
        match self.client.info(&target).await {
            Ok((reached, info)) => Ok(CheckedNode {
                info,
                fingerprint: reached.first_use,
            }),
            Err(e) => Err(check_error(e)),
        }
    }

    /// The certificate a node presents to a `/v1/info` call with `token`, if that call succeeds.
    async fn first_use_pin(&self, host: &str, port: u16, token: &str) -> Option<Fingerprint> {
        let target = Target {
            base: node::node_base_url(host, port, true),
            channel: Channel::FirstUse,
            token,
            pending_token: None,
        };
        match self.client.info(&target).await {
            Ok((reached, _)) => reached.first_use,
            Err(e) => {
                tracing::info!(node.host = %host, node.port = port, error = %e, "node not reached at registration; its certificate is pinned at the first successful call");
                None
            }
        }
    }

    pub async fn create(&self, new: NewNode) -> Result<Node> {
        self.ctx
            .authorize(Permission::Operate, "node.create")
            .await?;
        let name = match new.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => Some(input::node_name(n)?),
            _ => None,
        };
        let host = input::host("host", &new.host)?;
        input::port("http_port", new.http_port, false)?;
        let multiplier = new
            .usage_multiplier
            .map(input::usage_multiplier)
            .transpose()?
            .unwrap_or(1000);
        // Absent or empty: generate one.
        let token = match new.http_token.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => input::node_token(t)?,
            _ => util::random_hex(32),
        };
        let given_pin = new
            .tls_fingerprint
            .as_deref()
            .map(channel::fingerprint)
            .transpose()?;
        if given_pin.is_some() && new.insecure_http {
            return Err(ServiceError::invalid(
                "tls_fingerprint",
                "a plain HTTP node has no certificate to pin",
            ));
        }
        // Refuse a taken address before talking to it.
        taken_by(
            &NodeEntity::find().all(&self.ctx.db).await?,
            &host,
            new.http_port,
        )?;
        let pin = match given_pin {
            Some(pin) => Some(pin),
            None if new.insecure_http => None,
            None => self.first_use_pin(&host, new.http_port, &token).await,
        };
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let others = NodeEntity::find().all(&txn).await?;
        taken_by(&others, &host, new.http_port)?;
        if let Some(name) = &name {
            name_taken(&others, name)?;
        }
        let relay_taken: Vec<i32> = others
            .iter()
            .filter(|n| n.host == host)
            .map(|n| n.relay_port)
            .collect();
        let internal_taken: Vec<i32> = others.iter().map(|n| n.internal_port).collect();
        let now = util::now_ms();
        let row = node::ActiveModel {
            // Unique until the id is known; replaced below when no name was given.
            name: Set(name.clone().unwrap_or_else(|| util::random_hex(16))),
            host: Set(host),
            http_port: Set(new.http_port.into()),
            http_token: Set(token),
            usage_bytes: Set(0),
            push_status: Set(NodeStatus::Processing),
            pull_status: Set(NodeStatus::Processing),
            pushed_at: Set(0),
            pulled_at: Set(0),
            applied_version: Set(None),
            last_error: Set(None),
            relay_key: Set(util::random_key(LINK_METHOD.key_len())),
            relay_port: Set(pick_port(&relay_taken, |_| true)),
            internal_key: Set(util::random_key(LINK_METHOD.key_len())),
            internal_port: Set(pick_port(&internal_taken, bindable)),
            created_at: Set(now),
            updated_at: Set(now),
            tls_fingerprint: Set(pin.map(|p| p.to_string())),
            presented_fingerprint: Set(None),
            insecure_http: Set(new.insecure_http),
            pending_token: Set(None),
            refused_calls: Set(0),
            usage_multiplier_permille: Set(multiplier),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| unique_violation(e, "host", "a node with this host and HTTP port exists"))?;
        let row = match name {
            Some(_) => row,
            None => {
                let name = default_name(&others, row.id);
                let mut am = row.into_active_model();
                am.name = Set(name);
                am.update(&txn).await?
            }
        };
        settings::touch(&txn).await?;
        txn.commit().await?;
        tracing::info!(
            node.id = row.id,
            node.name = %row.name,
            node.host = %row.host,
            node.port = row.http_port,
            node.insecure_http = row.insecure_http,
            tls.fingerprint = row.tls_fingerprint.as_deref().unwrap_or(""),
            "node added"
        );
        if new.insecure_http {
            tracing::warn!(
                node.id = row.id,
                "node registered as plain HTTP: its token and configs cross the network in clear"
            );
        }
        self.ctx
            .audit(
                Entry::new("node.create")
                    .object("node", Some(row.id), &row.name)
                    .changes(node_changes(None, Some(&row))),
            )
            .await;
        self.changed();
        Ok(row)
    }

    pub async fn update(&self, id: i64, patch: NodePatch) -> Result<Node> {
        self.ctx
            .authorize(Permission::Operate, "node.update")
            .await?;
        let new_name = patch.name.as_deref().map(input::node_name).transpose()?;
        let new_host = patch
            .host
            .as_deref()
            .map(|h| input::host("host", h))
            .transpose()?;
        if let Some(p) = patch.http_port {
            input::port("http_port", p, false)?;
        }
        let new_token = patch
            .http_token
            .as_deref()
            .map(input::node_token)
            .transpose()?;
        let new_multiplier = patch
            .usage_multiplier
            .map(input::usage_multiplier)
            .transpose()?;
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let current = NodeEntity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("node {id}")))?;
        let others = NodeEntity::find()
            .filter(node::Column::Id.ne(id))
            .all(&txn)
            .await?;
        let port = patch
            .http_port
            .unwrap_or(u16::try_from(current.http_port).unwrap_or(0));
        let host_after = match &new_host {
            Some(h) => h.clone(),
            None => input::host("host", &current.host).unwrap_or_else(|_| current.host.clone()),
        };
        taken_by(&others, &host_after, port)?;
        if let Some(name) = &new_name {
            name_taken(&others, name)?;
        }
        let mut am = current.clone().into_active_model();
        // A new name changes only what is shown; a different address or token must be proven
        // again. Values equal to the current ones change nothing.
        let mut reprove = false;
        if let Some(name) = new_name.filter(|n| *n != current.name) {
            am.name = Set(name);
        }
        if let Some(m) = new_multiplier.filter(|m| *m != current.usage_multiplier_permille) {
            am.usage_multiplier_permille = Set(m);
        }
        if let Some(h) = new_host.filter(|h| *h != current.host) {
            am.host = Set(h);
            reprove = true;
        }
        if let Some(p) = patch
            .http_port
            .filter(|p| i32::from(*p) != current.http_port)
        {
            am.http_port = Set(p.into());
            reprove = true;
        }
        if let Some(t) = new_token.filter(|t| *t != current.http_token) {
            am.http_token = Set(t);
            // A token set by hand ends any rotation in progress.
            am.pending_token = Set(None);
            reprove = true;
        }
        if !am.is_changed() {
            return Ok(current);
        }
        if reprove {
            am.push_status = Set(NodeStatus::Processing);
            am.pull_status = Set(NodeStatus::Processing);
            am.applied_version = Set(None);
        }
        am.updated_at = Set(util::now_ms());
        let row = am
            .update(&txn)
            .await
            .map_err(|e| unique_violation(e, "host", "a node with this host or name exists"))?;
        settings::touch(&txn).await?;
        txn.commit().await?;
        tracing::info!(node.id = id, "node updated");
        self.ctx
            .audit(
                Entry::new("node.update")
                    .object("node", Some(id), &row.name)
                    .changes(node_changes(Some(&current), Some(&row))),
            )
            .await;
        self.ctx.send_node(&row);
        self.changed();
        Ok(self.ctx.desired.fill(row))
    }

    /// New internal keys and ports for the node's relay and reverse links.
    pub async fn rotate_keys(&self, id: i64) -> Result<Node> {
        self.ctx
            .authorize(Permission::Operate, "node.rotate-keys")
            .await?;
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let current = NodeEntity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("node {id}")))?;
        let others = NodeEntity::find()
            .filter(node::Column::Id.ne(id))
            .all(&txn)
            .await?;
        let relay_taken: Vec<i32> = others
            .iter()
            .filter(|n| n.host == current.host)
            .map(|n| n.relay_port)
            .collect();
        let internal_taken: Vec<i32> = others.iter().map(|n| n.internal_port).collect();
        let mut am = current.clone().into_active_model();
        am.relay_key = Set(util::random_key(LINK_METHOD.key_len()));
        am.relay_port = Set(pick_port(&relay_taken, |_| true));
        am.internal_key = Set(util::random_key(LINK_METHOD.key_len()));
        am.internal_port = Set(pick_port(&internal_taken, bindable));
        am.updated_at = Set(util::now_ms());
        let row = am.update(&txn).await?;
        settings::touch(&txn).await?;
        txn.commit().await?;
        tracing::info!(node.id = id, "node link keys rotated");
        self.ctx
            .audit(
                Entry::new("node.rotate-keys")
                    .object("node", Some(id), &row.name)
                    .changes(node_changes(Some(&current), Some(&row))),
            )
            .await;
        self.changed();
        Ok(self.ctx.desired.fill(row))
    }

    pub async fn delete(&self, id: i64) -> Result<()> {
        self.ctx
            .authorize(Permission::Operate, "node.delete")
            .await?;
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let current = NodeEntity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("node {id}")))?;
        NodeEntity::delete_by_id(id).exec(&txn).await?;
        stats_cursor::Entity::delete_many()
            .filter(stats_cursor::Column::NodeId.eq(id))
            .exec(&txn)
            .await?;
        history::forget(&txn, history::Subject::Node, id).await?;
        settings::touch(&txn).await?;
        txn.commit().await?;
        tracing::info!(node.id = id, "node deleted");
        self.ctx
            .audit(
                Entry::new("node.delete")
                    .object("node", Some(id), &current.name)
                    .changes(node_changes(Some(&current), None)),
            )
            .await;
        self.ctx.desired.forget(id);
        self.ctx.events.send(Event::NodeRemoved { id });
        self.changed();
        Ok(())
    }

    /// Zeroes the node's usage total (its history stays: it records what was carried).
    pub async fn reset_usage(&self, id: i64) -> Result<Node> {
        self.ctx
            .authorize(Permission::Operate, "node.reset-usage")
            .await?;
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let current = NodeEntity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("node {id}")))?;
        let before = current.usage_bytes;
        let mut am = current.into_active_model();
        am.usage_bytes = Set(0);
        am.updated_at = Set(util::now_ms());
        let row = am.update(&txn).await?;
        txn.commit().await?;
        tracing::info!(node.id = id, "node usage reset");
        self.ctx
            .audit(
                Entry::new("node.reset-usage")
                    .object("node", Some(id), &row.name)
                    .changes(Changes::new().field("usage_bytes", before, row.usage_bytes)),
            )
            .await;
        self.ctx.send_node(&row);
        Ok(self.ctx.desired.fill(row))
    }

    /// The bytes the node carried per hour or day in `[from, to)` (see [`history::query`]).
    pub async fn usage_history(
        &self,
        id: i64,
        step: history::Step,
        from: i64,
        to: i64,
    ) -> Result<Vec<history::Point>> {
        self.get(id).await?;
        history::query(&self.ctx.db, history::Subject::Node, id, step, from, to).await
    }

    pub(crate) fn changed(&self) {
        self.ctx.events.send(Event::NodesChanged);
        self.ctx.changes.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_avoid_taken() {
        let taken: Vec<i32> = (20000..=59998).collect();
        assert_eq!(pick_port(&taken, |_| true), 59999);
    }

    #[test]
    fn generated_tokens_pass_the_token_rule() {
        let token = util::random_hex(32);
        assert_eq!(input::node_token(&token).as_ref(), Ok(&token));
    }
}
