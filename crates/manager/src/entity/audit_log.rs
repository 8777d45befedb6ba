//! One entry of the audit log: an administrative action, a sign-in or a config push.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Unix ms.
    pub at: i64,
    /// `admin`, `token`, `admin-token`, `system` or `anonymous`.
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    /// The client address, for actions that came over HTTP.
    pub address: Option<String>,
    /// Dotted name, e.g. `user.update`, `sign-in.failed`, `node.push`.
    pub action: String,
    pub object_kind: Option<String>,
    pub object_id: Option<i64>,
    pub object_name: Option<String>,
    /// JSON object `{field: [before, after]}` (never a secret).
    #[sea_orm(column_type = "Text", nullable)]
    pub changes: Option<String>,
    /// `ok`, `failed` or `refused`.
    pub outcome: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
