//! Users: create, list, edit quota / enabled, delete. Every change re-syncs configs, so a disabled
//! or deleted user's live sessions are cut by the engines.

use super::{settings, unique_violation, Ctx};
use crate::entity::user::{self, Entity as UserEntity};
use crate::events::Event;
use crate::{util, Result, ServiceError};
use rules::{input, DisableReason};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, QueryOrder, Set};
use serde::Deserialize;

pub use user::Model as User;

/// The method users' links use.
pub const USER_METHOD: xray::Method = xray::Method::Chacha20IetfPoly1305;

/// A new user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    /// Bytes; 0 = unlimited.
    #[serde(default)]
    pub quota_bytes: i64,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A partial update of a user; absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub name: Option<String>,
    pub quota_bytes: Option<i64>,
    pub enabled: Option<bool>,
}

/// Manages users.
#[derive(Clone)]
pub struct UserService {
    pub(crate) ctx: Ctx,
}

impl UserService {
    pub async fn list(&self) -> Result<Vec<User>> {
        Ok(UserEntity::find()
            .order_by_asc(user::Column::Id)
            .all(&self.ctx.db)
            .await?)
    }

    pub async fn get(&self, id: i64) -> Result<User> {
        UserEntity::find_by_id(id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("user {id}")))
    }

    pub async fn create(&self, new: NewUser) -> Result<User> {
        let name = input::user_name(&new.name)?;
        input::quota_bytes(new.quota_bytes)?;
        let now = util::now_ms();
        let (sub_secret, sub_secret_hash) = super::subscriptions::new_secret();
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let row = user::ActiveModel {
            name: Set(name),
            password: Set(util::random_key(16)),
            method: Set(USER_METHOD.as_str().to_owned()),
            enabled: Set(new.enabled),
            disabled_reason: Set((!new.enabled).then_some(DisableReason::Manual)),
            quota_bytes: Set(new.quota_bytes),
            usage_bytes: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            sub_secret: Set(sub_secret),
            sub_secret_hash: Set(sub_secret_hash),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| unique_violation(e, "name", "a user with this name exists"))?;
        settings::touch(&txn).await?;
        txn.commit().await?;
        tracing::info!(user.id = row.id, "user created");
        self.changed();
        Ok(row)
    }

    pub async fn update(&self, id: i64, patch: UserPatch) -> Result<User> {
        let name = patch.name.as_deref().map(input::user_name).transpose()?;
        if let Some(q) = patch.quota_bytes {
            input::quota_bytes(q)?;
        }
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let current = UserEntity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("user {id}")))?;
        let mut am = current.clone().into_active_model();
        if let Some(name) = name {
            am.name = Set(name);
        }
        if let Some(q) = patch.quota_bytes {
            am.quota_bytes = Set(q);
        }
        match patch.enabled {
            Some(true) if !current.enabled => {
                am.enabled = Set(true);
                am.disabled_reason = Set(None);
            }
            Some(false) if current.enabled => {
                am.enabled = Set(false);
                am.disabled_reason = Set(Some(DisableReason::Manual));
            }
            _ => {}
        }
        if !am.is_changed() {
            return Ok(current);
        }
        am.updated_at = Set(util::now_ms());
        let row = am
            .update(&txn)
            .await
            .map_err(|e| unique_violation(e, "name", "a user with this name exists"))?;
        settings::touch(&txn).await?;
        txn.commit().await?;
        tracing::info!(user.id = id, enabled = row.enabled, "user updated");
        self.changed();
        Ok(row)
    }

    pub async fn delete(&self, id: i64) -> Result<()> {
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let res = UserEntity::delete_by_id(id).exec(&txn).await?;
        if res.rows_affected == 0 {
            return Err(ServiceError::NotFound(format!("user {id}")));
        }
        settings::touch(&txn).await?;
        txn.commit().await?;
        tracing::info!(user.id = id, "user deleted");
        self.changed();
        Ok(())
    }

    fn changed(&self) {
        self.ctx.events.send(Event::UsersChanged);
        self.ctx.changes.notify();
    }
}

impl UserService {
    /// The user's `ss://` links for every enabled mode.
    pub async fn links(&self, id: i64) -> Result<Vec<crate::links::Link>> {
        let user = self.get(id).await?;
        let s = settings::load(&self.ctx.db).await?;
        let nodes = crate::entity::node::Entity::find()
            .order_by_asc(crate::entity::node::Column::Id)
            .all(&self.ctx.db)
            .await?;
        Ok(crate::links::for_user(&user, &s, &nodes))
    }
}
