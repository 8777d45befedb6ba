//! Who may change what, and the record of who did: the audit log.
//!
//! **The actor.** Every change is made by an [`Actor`]: a signed-in administrator, an API token,
//! the `--admin-token`, the manager itself (`system`: the CLI, the coordinator's loops) or nobody
//! signed in (`anonymous`). The HTTP layers resolve the actor of each request once and run the
//! request inside [`acting`]; the services read it back with [`actor`]. Code that runs outside
//! any request acts as `system`.
//!
//! **Roles.** Every service method that changes something asks [`Ctx::authorize`] first, with
//! the kind of change ([`Permission`]); the rule itself is [`rules::Role::allows`]. A refusal is
//! [`ServiceError::Forbidden`] (REST 403), changes nothing and is recorded with outcome
//! `refused`. So the REST API, the panel's server functions and any future entry point enforce
//! the same roles without a check of their own.
//!
//! **The log.** Each change, sign-in (success and failure, with the address) and config push
//! (node, version, result) is one row of `audit_log`: actor, address, action (`user.update`,
//! `sign-in.failed`, `node.push`, …), object, the changed fields as `{field: [before, after]}`
//! and the outcome. Secrets never enter it: passwords, tokens and keys appear only as
//! `"(changed)"`, and the proxy URL's credentials are masked. [`AuditService::page`] reads it
//! newest first with filters; entries older than [`KEEP_MS`] are pruned by the coordinator.

use super::Ctx;
use crate::entity::audit_log;
use crate::{util, Result, ServiceError};
use rules::{Permission, Role};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;

/// How long entries are kept (one year).
pub const KEEP_MS: i64 = 365 * 24 * 3600 * 1000;

/// The most entries one page holds.
pub const MAX_PAGE: u64 = 500;

/// The value that stands for a secret in [`Changes`].
pub const HIDDEN: &str = "(changed)";

/// What kind of caller an [`Actor`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActorKind {
    Admin,
    Token,
    AdminToken,
    System,
    Anonymous,
}

impl ActorKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Admin => "admin",
            ActorKind::Token => "token",
            ActorKind::AdminToken => "admin-token",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        }
    }
}

/// Who makes a change, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub kind: ActorKind,
    /// The administrator's or API token's id.
    pub id: Option<i64>,
    pub name: String,
    /// The role of an administrator or token (`None` for `system` and `anonymous`).
    pub role: Option<Role>,
    /// The client address of the request.
    pub address: Option<IpAddr>,
}

impl Actor {
    /// A signed-in administrator.
    pub fn admin(id: i64, name: &str, role: Role, address: Option<IpAddr>) -> Actor {
        Actor {
            kind: ActorKind::Admin,
            id: Some(id),
            name: name.to_owned(),
            role: Some(role),
            address,
        }
    }

    /// A stored API token (named after the token, never its secret).
    pub fn token(id: i64, name: &str, role: Role, address: Option<IpAddr>) -> Actor {
        Actor {
            kind: ActorKind::Token,
            id: Some(id),
            name: name.to_owned(),
            role: Some(role),
            address,
        }
    }

    /// The `--admin-token` of the manager's command line: an owner.
    pub fn admin_token(address: Option<IpAddr>) -> Actor {
        Actor {
            kind: ActorKind::AdminToken,
            id: None,
            name: "admin token".to_owned(),
            role: Some(Role::Owner),
            address,
        }
    }

    /// The manager itself.
    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            id: None,
            name: "system".to_owned(),
            role: None,
            address: None,
        }
    }

    /// A request without valid credentials.
    pub fn anonymous(address: Option<IpAddr>) -> Actor {
        Actor {
            kind: ActorKind::Anonymous,
            id: None,
            name: "anonymous".to_owned(),
            role: None,
            address,
        }
    }

    /// Whether this actor may make changes of kind `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        match self.kind {
            ActorKind::System => true,
            ActorKind::Anonymous => false,
            ActorKind::Admin | ActorKind::Token | ActorKind::AdminToken => {
                self.role.is_some_and(|r| r.allows(permission))
            }
        }
    }
}

tokio::task_local! {
    static ACTOR: Actor;
}

/// Runs `f` (one request) with `actor` as the one making its changes.
pub async fn acting<F: Future>(actor: Actor, f: F) -> F::Output {
    ACTOR.scope(actor, f).await
}

/// The actor of the running request; `system` outside of any.
pub fn actor() -> Actor {
    ACTOR
        .try_with(Actor::clone)
        .unwrap_or_else(|_| Actor::system())
}

/// The changed fields of one object: `{field: [before, after]}`; for a new object
/// `{field: [null, value]}`, for a deleted one `{field: [value, null]}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes(Map<String, Value>);

impl Changes {
    pub fn new() -> Changes {
        Changes::default()
    }

    /// Records `name` if `before` and `after` differ.
    pub fn field(mut self, name: &str, before: impl Serialize, after: impl Serialize) -> Changes {
        let (before, after) = (json(before), json(after));
        if before != after {
            self.0
                .insert(name.to_owned(), Value::Array(vec![before, after]));
        }
        self
    }

    /// Records that the secret `name` changed, without its value.
    pub fn secret(mut self, name: &str) -> Changes {
        self.0.insert(name.to_owned(), Value::String(HIDDEN.into()));
        self
    }

    /// Every top-level field that differs between two serialisations; `hidden` fields are
    /// recorded as changed without their values, `ignored` ones not at all.
    pub fn between(
        before: impl Serialize,
        after: impl Serialize,
        hidden: &[&str],
        ignored: &[&str],
    ) -> Changes {
        let (before, after) = (json(before), json(after));
        let empty = Map::new();
        let b = before.as_object().unwrap_or(&empty);
        let a = after.as_object().unwrap_or(&empty);
        let mut out = Changes::new();
        let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
        keys.dedup();
        for key in keys {
            if ignored.contains(&key.as_str()) || out.0.contains_key(key) {
                continue;
            }
            let (x, y) = (
                b.get(key).cloned().unwrap_or(Value::Null),
                a.get(key).cloned().unwrap_or(Value::Null),
            );
            if x == y {
                continue;
            }
            if hidden.contains(&key.as_str()) {
                out = out.secret(key);
            } else {
                out.0.insert(key.clone(), Value::Array(vec![x, y]));
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn into_text(self) -> Option<String> {
        (!self.0.is_empty()).then(|| Value::Object(self.0).to_string())
    }
}

fn json(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Tried and failed (a sign-in with wrong credentials, a push the node did not take).
    Failed,
    /// Not allowed for the actor's role; nothing changed.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        }
    }
}

/// One entry to record.
#[derive(Debug, Clone)]
pub struct Entry {
    action: &'static str,
    object: Option<(&'static str, Option<i64>, String)>,
    changes: Changes,
    outcome: Outcome,
}

impl Entry {
    /// A successful `action` (e.g. `user.update`).
    pub fn new(action: &'static str) -> Entry {
        Entry {
            action,
            object: None,
            changes: Changes::new(),
            outcome: Outcome::Ok,
        }
    }

    /// The object acted on: its kind (`user`, `node`, `settings`, …), id and name.
    pub fn object(mut self, kind: &'static str, id: Option<i64>, name: &str) -> Entry {
        self.object = Some((kind, id, name.to_owned()));
        self
    }

    pub fn changes(mut self, changes: Changes) -> Entry {
        self.changes = changes;
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Entry {
        self.outcome = outcome;
        self
    }
}

impl Ctx {
    /// Checks that the running request's actor may make changes of kind `permission` before
    /// `action`. A refusal is recorded and returned as [`ServiceError::Forbidden`].
    pub(crate) async fn authorize(
        &self,
        permission: Permission,
        action: &'static str,
    ) -> Result<Actor> {
        let actor = actor();
        if actor.allows(permission) {
            return Ok(actor);
        }
        self.record(&actor, Entry::new(action).outcome(Outcome::Refused))
            .await;
        let role = actor.role.map_or("none", Role::as_str);
        Err(ServiceError::Forbidden(match permission {
            Permission::Operate => format!("the {role} role cannot change users or nodes"),
            Permission::Administer => {
                format!("the {role} role cannot change settings, administrators or API tokens")
            }
        }))
    }

    /// Records `entry` as done by the running request's actor.
    pub(crate) async fn audit(&self, entry: Entry) {
        self.record(&actor(), entry).await;
    }

    /// Records `entry` as done by `actor` (see [`write`]).
    pub(crate) async fn record(&self, actor: &Actor, entry: Entry) {
        write(&self.db, actor, entry).await;
    }
}

/// Writes `entry` as done by `actor`. A failure to write is logged, not returned: the action it
/// describes has already happened.
pub(crate) async fn write(db: &DatabaseConnection, actor: &Actor, entry: Entry) {
    {
        let (object_kind, object_id, object_name) = match entry.object {
            Some((kind, id, name)) => (Some(kind.to_owned()), id, Some(name)),
            None => (None, None, None),
        };
        let row = audit_log::ActiveModel {
            at: Set(util::now_ms()),
            actor_kind: Set(actor.kind.as_str().to_owned()),
            actor_id: Set(actor.id),
            actor_name: Set(actor.name.clone()),
            address: Set(actor.address.map(|a| a.to_string())),
            action: Set(entry.action.to_owned()),
            object_kind: Set(object_kind),
            object_id: Set(object_id),
            object_name: Set(object_name),
            changes: Set(entry.changes.into_text()),
            outcome: Set(entry.outcome.as_str().to_owned()),
            ..Default::default()
        };
        if let Err(e) = row.insert(db).await {
            tracing::error!(error = %e, action = entry.action, "audit entry not written");
        }
    }
}

/// One entry as it is read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix ms.
    pub at: i64,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub address: Option<String>,
    pub action: String,
    pub object_kind: Option<String>,
    pub object_id: Option<i64>,
    pub object_name: Option<String>,
    /// `{field: [before, after]}`, or `null`.
    pub changes: Value,
    pub outcome: String,
}

impl From<audit_log::Model> for AuditEntry {
    fn from(m: audit_log::Model) -> AuditEntry {
        AuditEntry {
            changes: m
                .changes
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or(Value::Null),
            id: m.id,
            at: m.at,
            actor_kind: m.actor_kind,
            actor_id: m.actor_id,
            actor_name: m.actor_name,
            address: m.address,
            action: m.action,
            object_kind: m.object_kind,
            object_id: m.object_id,
            object_name: m.object_name,
            outcome: m.outcome,
        }
    }
}

/// Which entries to read: newest first, older than `before` (an entry id) when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// An action (`user.update`), or a prefix ending in `.` (`user.`) for a whole area.
    pub action: Option<String>,
    /// The actor's name, exactly.
    pub actor: Option<String>,
    /// `kind` or `kind:id`, e.g. `node:3`.
    pub object: Option<(String, Option<i64>)>,
    pub before: Option<i64>,
    pub limit: u64,
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery {
            action: None,
            actor: None,
            object: None,
            before: None,
            limit: 50,
        }
    }
}

impl AuditQuery {
    /// The query of URL parameters `action`, `actor`, `object`, `before` and `limit` (REST and
    /// the panel's page). An unknown or bad parameter is refused by name; empty values are
    /// ignored.
    pub fn from_params(params: &HashMap<String, String>) -> Result<AuditQuery> {
        let mut q = AuditQuery::default();
        for (key, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let text = |field: &str| -> Result<String> {
                if value.chars().count() > 64 || value.chars().any(char::is_control) {
                    return Err(ServiceError::invalid(
                        field,
                        "must be at most 64 characters without control characters",
                    ));
                }
                Ok(value.to_owned())
            };
            match key.as_str() {
                "action" => q.action = Some(text("action")?),
                "actor" => q.actor = Some(text("actor")?),
                "object" => {
                    let v = text("object")?;
                    q.object = Some(match v.split_once(':') {
                        Some((kind, id)) => (
                            kind.to_owned(),
                            Some(id.parse().map_err(|_| {
                                ServiceError::invalid("object", "must be kind or kind:id")
                            })?),
                        ),
                        None => (v, None),
                    });
                }
                "before" => {
                    q.before = Some(
                        value
                            .parse()
                            .map_err(|_| ServiceError::invalid("before", "must be an entry id"))?,
                    )
                }
                "limit" => {
                    q.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| {
                            ServiceError::invalid(
                                "limit",
                                format!("must be a number from 1 to {MAX_PAGE}"),
                            )
                        })?
                }
                other => {
                    return Err(ServiceError::invalid(other, "is not a known parameter"));
                }
            }
        }
        Ok(q)
    }
}

impl AuditQuery {
    /// The URL query that [`AuditQuery::from_params`] reads back as this query (parameters with
    /// their default value left out).
    pub fn to_query_string(&self) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(action) = &self.action {
            pairs.push(("action", action.clone()));
        }
        if let Some(actor) = &self.actor {
            pairs.push(("actor", actor.clone()));
        }
        match &self.object {
            Some((kind, Some(id))) => pairs.push(("object", format!("{kind}:{id}"))),
            Some((kind, None)) => pairs.push(("object", kind.clone())),
            None => {}
        }
        if let Some(before) = self.before {
            pairs.push(("before", before.to_string()));
        }
        if self.limit != AuditQuery::default().limit {
            pairs.push(("limit", self.limit.to_string()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// One page of entries, and the cursor of the next (older) one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; `None` on the last.
    pub next: Option<i64>,
}

/// Reads and prunes the audit log.
#[derive(Clone)]
pub struct AuditService {
    pub(crate) ctx: Ctx,
}

impl AuditService {
    /// One page of entries matching `q`, newest first.
    pub async fn page(&self, q: AuditQuery) -> Result<AuditPage> {
        let mut cond = Condition::all();
        if let Some(action) = &q.action {
            cond = if action.ends_with('.') {
                cond.add(audit_log::Column::Action.starts_with(action.as_str()))
            } else {
                cond.add(audit_log::Column::Action.eq(action.as_str()))
            };
        }
        if let Some(actor) = &q.actor {
            cond = cond.add(audit_log::Column::ActorName.eq(actor.as_str()));
        }
        if let Some((kind, id)) = &q.object {
            cond = cond.add(audit_log::Column::ObjectKind.eq(kind.as_str()));
            if let Some(id) = id {
                cond = cond.add(audit_log::Column::ObjectId.eq(*id));
            }
        }
        if let Some(before) = q.before {
            cond = cond.add(audit_log::Column::Id.lt(before));
        }
        let limit = q.limit.clamp(1, MAX_PAGE);
        let mut rows = audit_log::Entity::find()
            .filter(cond)
            .order_by_desc(audit_log::Column::Id)
            .limit(limit + 1)
            .all(&self.ctx.db)
            .await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next = more.then(|| rows.last().map(|r| r.id)).flatten();
        Ok(AuditPage {
            entries: rows.into_iter().map(AuditEntry::from).collect(),
            next,
        })
    }

    /// How many entries there are.
    pub async fn count(&self) -> Result<u64> {
        Ok(audit_log::Entity::find().count(&self.ctx.db).await?)
    }
}

/// Deletes entries older than [`KEEP_MS`] before `now`; returns how many. Run by the
/// coordinator on every pull (an indexed range: cheap when there is nothing to delete).
pub(crate) async fn prune(db: &DatabaseConnection, now: i64) -> Result<u64> {
    Ok(audit_log::Entity::delete_many()
        .filter(audit_log::Column::At.lt(now - KEEP_MS))
        .exec(db)
        .await?
        .rows_affected)
}

/// A proxy URL with its password (and user name) masked, for the log.
pub fn mask_url_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{HIDDEN}@{host}"),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_between_two_values_hide_secrets_and_skip_ignored_fields() {
        let before =
            serde_json::json!({"name": "a", "password": "p1", "updated_at": 1, "quota": 5});
        let after = serde_json::json!({"name": "b", "password": "p2", "updated_at": 2, "quota": 5});
        let c = Changes::between(&before, &after, &["password"], &["updated_at"]);
        assert_eq!(
            Value::Object(c.0),
            serde_json::json!({"name": ["a", "b"], "password": HIDDEN})
        );
    }

    #[test]
    fn proxy_credentials_are_masked() {
        assert_eq!(
            mask_url_credentials("socks5://u:secret@proxy.example:1080"),
            format!("socks5://{HIDDEN}@proxy.example:1080")
        );
        assert_eq!(
            mask_url_credentials("http://proxy.example:3128"),
            "http://proxy.example:3128"
        );
        assert_eq!(mask_url_credentials(""), "");
    }

    #[test]
    fn roles_of_actors() {
        assert!(Actor::system().allows(Permission::Administer));
        assert!(!Actor::anonymous(None).allows(Permission::Operate));
        assert!(Actor::admin_token(None).allows(Permission::Administer));
        let viewer = Actor::token(1, "ci", Role::Viewer, None);
        assert!(!viewer.allows(Permission::Operate));
        let operator = Actor::admin(2, "op", Role::Operator, None);
        assert!(operator.allows(Permission::Operate));
        assert!(!operator.allows(Permission::Administer));
    }

    fn url_pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| {
                let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
                (k.to_owned(), v.into_owned())
            })
            .collect()
    }

    #[test]
    fn query_parameters_are_checked_by_name() {
        let params = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let q = AuditQuery::from_params(&params(&[
            ("action", "user."),
            ("object", "node:3"),
            ("before", "10"),
            ("limit", "5"),
            ("actor", ""),
        ]))
        .expect("valid");
        assert_eq!(q.action.as_deref(), Some("user."));
        assert_eq!(q.object, Some(("node".to_owned(), Some(3))));
        assert_eq!((q.before, q.limit, q.actor.clone()), (Some(10), 5, None));
        let back: HashMap<String, String> = url_pairs(&q.to_query_string()).into_iter().collect();
        assert_eq!(AuditQuery::from_params(&back).expect("round trip"), q);
        for (bad, field) in [
            (("limit", "0"), "limit"),
            (("limit", "501"), "limit"),
            (("before", "x"), "before"),
            (("object", "node:x"), "object"),
            (("sort", "id"), "sort"),
        ] {
            let err = AuditQuery::from_params(&params(&[bad])).expect_err("refused");
            assert_eq!(err.field(), Some(field));
        }
    }
}
