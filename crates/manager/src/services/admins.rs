//! Administrators as owners manage them: list, add (name, password, role), change a role or
//! password, remove. Every change needs [`Permission::Administer`] and is audited (a password
//! only as changed). There is always at least one owner: removing or demoting the last one is
//! refused. A changed password or a removal ends the administrator's sessions; a changed role
//! applies to the next request, since every request reads the role afresh.

use super::audit::{Changes, Entry};
use super::auth::{Admin, AuthService};
use crate::entity::{admin, session};
use crate::{Result, ServiceError};
use rules::{Permission, Role};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::Deserialize;

/// A new administrator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    pub username: String,
    pub password: String,
    pub role: Role,
}

/// A change to an administrator; absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminPatch {
    pub role: Option<Role>,
    pub password: Option<String>,
}

impl AuthService {
    /// Every administrator, oldest first.
    pub async fn list_admins(&self) -> Result<Vec<Admin>> {
        Ok(admin::Entity::find()
            .order_by_asc(admin::Column::Id)
            .all(&self.ctx.db)
            .await?
            .into_iter()
            .map(Admin::from)
            .collect())
    }

    /// Adds an administrator.
    pub async fn add_admin(&self, new: NewAdmin) -> Result<Admin> {
        self.ctx
            .authorize(Permission::Administer, "admin.create")
            .await?;
        let admin = self
            .insert_admin(&new.username, &new.password, new.role)
            .await?;
        tracing::info!(admin.id = admin.id, role = %admin.role, "administrator added");
        self.ctx
            .audit(
                Entry::new("admin.create")
                    .object("admin", Some(admin.id), &admin.username)
                    .changes(
                        Changes::new()
                            .field("role", (), admin.role)
                            .secret("password"),
                    ),
            )
            .await;
        Ok(admin)
    }

    /// Changes an administrator's role or password.
    pub async fn update_admin(&self, id: i64, patch: AdminPatch) -> Result<Admin> {
        self.ctx
            .authorize(Permission::Administer, "admin.update")
            .await?;
        if let Some(p) = &patch.password {
            rules::input::password(p)?;
        }
        let hash = match &patch.password {
            Some(p) => Some(self.hasher.hash(p).await?),
            None => None,
        };
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let current = admin::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("administrator {id}")))?;
        let mut changes = Changes::new();
        let mut am = current.clone().into_active_model();
        if let Some(role) = patch.role.filter(|r| *r != current.role) {
            if current.role == Role::Owner && owners(&txn).await? <= 1 {
                return Err(ServiceError::conflict(
                    "role",
                    "this is the last owner: make another administrator an owner first",
                ));
            }
            am.role = Set(role);
            changes = changes.field("role", current.role, role);
        }
        if let Some(hash) = hash {
            am.password_hash = Set(hash);
            changes = changes.secret("password");
        }
        if changes.is_empty() {
            return Ok(Admin::from(current));
        }
        let row = am.update(&txn).await?;
        if patch.password.is_some() {
            session::Entity::delete_many()
                .filter(session::Column::AdminId.eq(id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        tracing::info!(admin.id = id, role = %row.role, "administrator updated");
        self.ctx
            .audit(
                Entry::new("admin.update")
                    .object("admin", Some(id), &row.username)
                    .changes(changes),
            )
            .await;
        Ok(Admin::from(row))
    }

    /// Removes an administrator and ends their sessions.
    pub async fn delete_admin(&self, id: i64) -> Result<()> {
        self.ctx
            .authorize(Permission::Administer, "admin.delete")
            .await?;
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let current = admin::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("administrator {id}")))?;
        if current.role == Role::Owner && owners(&txn).await? <= 1 {
            return Err(ServiceError::conflict(
                "role",
                "this is the last owner: make another administrator an owner first",
            ));
        }
        session::Entity::delete_many()
            .filter(session::Column::AdminId.eq(id))
            .exec(&txn)
            .await?;
        admin::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        tracing::info!(admin.id = id, "administrator removed");
        self.ctx
            .audit(
                Entry::new("admin.delete")
                    .object("admin", Some(id), &current.username)
                    .changes(Changes::new().field("role", current.role, ())),
            )
            .await;
        Ok(())
    }
}

/// How many owners there are, locking their rows until the transaction ends. On PostgreSQL two
/// owners demoting each other at once would otherwise both read "two owners" and both succeed;
/// with the rows locked the second waits, then counts again without the one just demoted.
/// (SQLite has no row locks and needs none: `write_txn` already runs one writer at a time.)
async fn owners(txn: &sea_orm::DatabaseTransaction) -> Result<u64> {
    let ids: Vec<i64> = admin::Entity::find()
        .select_only()
        .column(admin::Column::Id)
        .filter(admin::Column::Role.eq(Role::Owner))
        .lock_exclusive()
        .into_tuple()
        .all(txn)
        .await?;
    Ok(ids.len() as u64)
}
