//! The secure node channel's state changes: re-pinning a node's certificate after it changed,
//! rotating a node's token without downtime, and the bookkeeping after every successful call
//! ([`after_call`]: a first-use pin is stored, a pending token the node accepted is promoted).
//!
//! Token rotation, step by step (each step leaves a node the manager can reach):
//! 1. a new token is stored as `pending_token` (committed);
//! 2. `POST /v1/token` offers it to the node, authorised by the current token: the node now
//!    accepts both. If this fails the pending token is cleared again (the node may hold it as a
//!    second token, which no one else knows; the current one keeps working);
//! 3. one call with the new token alone (`GET /v1/info`): the node drops the old one;
//! 4. `http_token` = new, `pending_token` = NULL.
//!
//! While a token is pending, every push and pull settles it (the node client asks the node with
//! it, see `node_client`) and [`after_call`] records the outcome: the node took the pending token
//! → it becomes `http_token`; the node refused it while taking the current one → it is forgotten.
//! So a rotation interrupted at any step (node down, manager stopped) ends with a token the node
//! takes, at the next push or pull. Neither token is ever logged.

use super::{Fingerprint, Node, NodeService};
use crate::entity::node::{self, Entity as NodeEntity};
use crate::node_client::{PendingToken, Reached, Target};
use crate::services::audit::{Changes, Entry, Outcome};
use crate::services::settings;
use crate::{util, Result, ServiceError};
use rules::Permission;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

/// A fingerprint given by the operator; a 400 on `tls_fingerprint` when malformed.
pub(super) fn fingerprint(value: &str) -> Result<Fingerprint> {
    value.trim().parse().map_err(|_| {
        ServiceError::invalid(
            "tls_fingerprint",
            "must be a SHA-256 certificate fingerprint: 64 hex digits, optionally as 32 colon-separated pairs",
        )
    })
}

/// Records what a successful call to `n` established: the certificate it presented on first
/// use becomes the pin; a pending token it accepted becomes the token, one it refused is
/// forgotten. The writes only apply to the row as the call saw it, so a concurrent change is
/// never overwritten. Says whether the row changed.
pub(crate) async fn after_call(
    db: &impl ConnectionTrait,
    n: &Node,
    reached: &Reached,
) -> Result<bool> {
    let mut changed = false;
    if let (Some(presented), None, false) = (reached.first_use, &n.tls_fingerprint, n.insecure_http)
    {
        let res = NodeEntity::update_many()
            .col_expr(
                node::Column::TlsFingerprint,
                Expr::value(Some(presented.to_string())),
            )
            .filter(node::Column::Id.eq(n.id))
            .filter(node::Column::TlsFingerprint.is_null())
            .filter(node::Column::InsecureHttp.eq(false))
            .exec(db)
            .await?;
        if res.rows_affected > 0 {
            tracing::info!(node.id = n.id, tls.fingerprint = %presented, "node certificate pinned on first use");
            changed = true;
        }
    }
    // A call that passed the pin settles any earlier refusal, also one recorded by a call that
    // was still in flight with an older pin when the operator re-pinned.
    if let (Some(pin), false) = (&n.tls_fingerprint, n.insecure_http) {
        let res = NodeEntity::update_many()
            .col_expr(
                node::Column::PresentedFingerprint,
                Expr::value(Option::<String>::None),
            )
            .filter(node::Column::Id.eq(n.id))
            .filter(node::Column::TlsFingerprint.eq(pin.clone()))
            .filter(node::Column::PresentedFingerprint.is_not_null())
            .exec(db)
            .await?;
        if res.rows_affected > 0 {
            changed = true;
        }
    }
    if let (Some(PendingToken::Refused), Some(pending)) = (reached.pending_token, &n.pending_token)
    {
        let res = NodeEntity::update_many()
            .col_expr(
                node::Column::PendingToken,
                Expr::value(Option::<String>::None),
            )
            .filter(node::Column::Id.eq(n.id))
            .filter(node::Column::PendingToken.eq(pending.clone()))
            .exec(db)
            .await?;
        if res.rows_affected > 0 {
            tracing::info!(
                node.id = n.id,
                "the node never received the pending token; it keeps its token"
            );
            changed = true;
        }
    }
    if let (Some(PendingToken::Accepted), Some(pending)) = (reached.pending_token, &n.pending_token)
    {
        let res = NodeEntity::update_many()
            .col_expr(node::Column::HttpToken, Expr::value(pending.clone()))
            .col_expr(
                node::Column::PendingToken,
                Expr::value(Option::<String>::None),
            )
            .col_expr(node::Column::UpdatedAt, Expr::value(util::now_ms()))
            .filter(node::Column::Id.eq(n.id))
            .filter(node::Column::PendingToken.eq(pending.clone()))
            .exec(db)
            .await?;
        if res.rows_affected > 0 {
            tracing::info!(
                node.id = n.id,
                "node accepted only the rotated token; rotation completed"
            );
            changed = true;
        }
    }
    Ok(changed)
}

impl NodeService {
    /// Pins `fingerprint`, or else the certificate the node presented when its pin was refused;
    /// clears the refusal and pushes at once. A 409 when there is nothing to pin or the node is
    /// plain HTTP, a 400 for a malformed fingerprint.
    pub async fn repin(&self, id: i64, fingerprint: Option<String>) -> Result<Node> {
        self.ctx
            .authorize(Permission::Operate, "node.repin")
            .await?;
        let given = fingerprint.as_deref().map(self::fingerprint).transpose()?;
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let current = NodeEntity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("node {id}")))?;
        if current.insecure_http {
            return Err(ServiceError::conflict(
                "tls_fingerprint",
                "this node is registered as plain HTTP: it has no certificate to pin",
            ));
        }
        let pin = match (given, current.presented_fingerprint.as_deref()) {
            (Some(pin), _) => pin,
            (None, Some(presented)) => self::fingerprint(presented)?,
            (None, None) => {
                return Err(ServiceError::conflict(
                    "tls_fingerprint",
                    "the node presented no other certificate: give the fingerprint to pin",
                ))
            }
        };
        NodeEntity::update_many()
            .col_expr(
                node::Column::TlsFingerprint,
                Expr::value(Some(pin.to_string())),
            )
            .col_expr(
                node::Column::PresentedFingerprint,
                Expr::value(Option::<String>::None),
            )
            .col_expr(node::Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(node::Column::UpdatedAt, Expr::value(util::now_ms()))
            .filter(node::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        let row = NodeEntity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("node {id}")))?;
        txn.commit().await?;
        tracing::warn!(
            node.id = id,
            tls.old = current.tls_fingerprint.as_deref().unwrap_or(""),
            tls.new = %pin,
            "node certificate re-pinned"
        );
        self.ctx
            .audit(
                Entry::new("node.repin")
                    .object("node", Some(id), &row.name)
                    .changes(Changes::new().field(
                        "tls_fingerprint",
                        &current.tls_fingerprint,
                        &row.tls_fingerprint,
                    )),
            )
            .await;
        self.ctx.send_node(&row);
        self.changed();
        Ok(self.ctx.desired.fill(row))
    }

    /// Gives the node a new random token (32 bytes, hex) without downtime: see the module doc
    /// for the steps. A node that cannot be reached → [`ServiceError::Unreachable`], and the node
    /// keeps its token.
    pub async fn rotate_token(&self, id: i64) -> Result<Node> {
        self.ctx
            .authorize(Permission::Operate, "node.rotate-token")
            .await?;
        let result = self.rotate_token_steps(id).await;
        let entry = match &result {
            Ok(row) => Entry::new("node.rotate-token")
                .object("node", Some(id), &row.name)
                .changes(Changes::new().secret("http_token")),
            Err(ServiceError::NotFound(_)) => return result,
            Err(e) => Entry::new("node.rotate-token")
                .object("node", Some(id), &format!("node {id}"))
                .changes(Changes::new().field("error", (), e.to_string()))
                .outcome(Outcome::Failed),
        };
        self.ctx.audit(entry).await;
        result
    }

    async fn rotate_token_steps(&self, id: i64) -> Result<Node> {
        let proxy = settings::load(&self.ctx.db).await?.proxy_url;
        let mut current = self.get(id).await?;
        if current.pending_token.is_some() {
            // An earlier rotation was interrupted: settle it first, so its token is not lost.
            let target = Target::of(&current).map_err(ServiceError::Unreachable)?;
            let (reached, _) = self
                .client
                .info(&target)
                .await
                .map_err(ServiceError::Unreachable)?;
            after_call(&self.ctx.db, &current, &reached).await?;
            current = self.get(id).await?;
        }
        let new_token = util::random_hex(32);
        // 1. Stored first: whatever happens next, the manager knows the token it offered.
        let stored = NodeEntity::update_many()
            .col_expr(
                node::Column::PendingToken,
                Expr::value(Some(new_token.clone())),
            )
            .filter(node::Column::Id.eq(id))
            .filter(node::Column::HttpToken.eq(current.http_token.clone()))
            .exec(&self.ctx.db)
            .await?;
        if stored.rows_affected == 0 {
            return Err(ServiceError::conflict(
                "http_token",
                "the node's token changed meanwhile; try again",
            ));
        }
        let target = Target::of(&current).map_err(ServiceError::Unreachable)?;
        // 2. Offered with the current token alone.
        let offered = self.client.offer_token(&target, &new_token, &proxy).await;
        if let Ok(reached) = &offered {
            after_call(&self.ctx.db, &current, reached).await?;
        }
        if let Err(e) = offered {
            NodeEntity::update_many()
                .col_expr(
                    node::Column::PendingToken,
                    Expr::value(Option::<String>::None),
                )
                .filter(node::Column::Id.eq(id))
                .filter(node::Column::PendingToken.eq(new_token.clone()))
                .exec(&self.ctx.db)
                .await?;
            tracing::warn!(node.id = id, error = %e, "token rotation failed; the node keeps its token");
            return Err(ServiceError::Unreachable(e));
        }
        // 3. The first call with the new token alone: the node drops the old one.
        let with_new = Target {
            token: &new_token,
            pending_token: None,
            ..target
        };
        if let Err(e) = self.client.info(&with_new).await {
            tracing::warn!(node.id = id, error = %e, "the node took the new token but did not answer with it; the next call settles the rotation");
            return Err(ServiceError::Unreachable(e));
        }
        // 4. Switched: the row still holds the old token or the pending new one (a pull in the
        // meantime may have settled the pending token either way).
        NodeEntity::update_many()
            .col_expr(node::Column::HttpToken, Expr::value(new_token.clone()))
            .col_expr(
                node::Column::PendingToken,
                Expr::value(Option::<String>::None),
            )
            .col_expr(node::Column::UpdatedAt, Expr::value(util::now_ms()))
            .filter(node::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(node::Column::PendingToken.eq(new_token.clone()))
                    .add(node::Column::HttpToken.eq(current.http_token.clone())),
            )
            .exec(&self.ctx.db)
            .await?;
        let row = self.get(id).await?;
        tracing::info!(node.id = id, "node token rotated");
        self.ctx.send_node(&row);
        Ok(row)
    }
}
