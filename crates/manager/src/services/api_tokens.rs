//! API tokens for automation on `/v1`: created with a name and a role (the secret is shown
//! once), listed with when they were created and last used, revoked by deleting them. Creating
//! and revoking need [`Permission::Administer`] and are audited. Only the SHA-256 of a
//! token is stored; a revoked token is refused on its next request. `last_used_at` is written at
//! most once per [`LAST_USED_GRANULARITY_MS`], not on every request.

use super::audit::{Actor, Changes, Entry};
use super::auth::AuthService;
use crate::entity::api_token;
use crate::{util, Result, ServiceError};
use rules::{Permission, Role};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;
use std::net::IpAddr;

/// How stale `last_used_at` may be.
pub const LAST_USED_GRANULARITY_MS: i64 = 60_000;

/// An API token as it is listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// What requests with the token may change.
    pub role: Role,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last use (to the minute), if any.
    pub last_used_at: Option<i64>,
}

/// A token just created: `secret` is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewApiToken {
    #[serde(flatten)]
    pub token: ApiToken,
    pub secret: String,
}

impl From<api_token::Model> for ApiToken {
    fn from(m: api_token::Model) -> ApiToken {
        ApiToken {
            id: m.id,
            name: m.name,
            role: m.role,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
        }
    }
}

impl AuthService {
    /// Checks a REST Bearer token: the configured admin token or a stored API token.
    pub async fn check_bearer(&self, token: &str) -> Result<bool> {
        Ok(self.bearer_actor(token, None).await?.is_some())
    }

    /// The actor behind a REST Bearer token, from `address`: the `--admin-token` (an owner) or a
    /// stored API token with its role; `None` for anything else.
    pub async fn bearer_actor(
        &self,
        token: &str,
        address: Option<IpAddr>,
    ) -> Result<Option<Actor>> {
        if token.is_empty() || token.len() > 256 {
            return Ok(None);
        }
        if let Some(t) = &self.admin_token {
            if util::secrets_equal(t, token) {
                return Ok(Some(Actor::admin_token(address)));
            }
        }
        let Some(row) = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(util::sha256_hex(token)))
            .one(&self.ctx.db)
            .await?
        else {
            return Ok(None);
        };
        let now = util::now_ms();
        if row
            .last_used_at
            .is_none_or(|t| now - t >= LAST_USED_GRANULARITY_MS)
        {
            api_token::Entity::update_many()
                .col_expr(api_token::Column::LastUsedAt, Expr::value(Some(now)))
                .filter(api_token::Column::Id.eq(row.id))
                .exec(&self.ctx.db)
                .await?;
        }
        Ok(Some(Actor::token(row.id, &row.name, row.role, address)))
    }

    /// Creates a named owner token (CLI `token create`); the clear token is returned once.
    pub async fn create_api_token(&self, name: &str) -> Result<String> {
        Ok(self.create_token(name, Role::Owner).await?.secret)
    }

    /// Creates a named API token with `role`: its listing entry and the secret, shown once.
    pub async fn create_token(&self, name: &str, role: Role) -> Result<NewApiToken> {
        self.ctx
            .authorize(Permission::Administer, "token.create")
            .await?;
        let name = name.trim();
        if !(1..=64).contains(&name.chars().count()) || name.chars().any(char::is_control) {
            return Err(ServiceError::invalid(
                "name",
                "must be 1–64 characters without control characters",
            ));
        }
        let secret = util::random_hex(32);
        let row = api_token::ActiveModel {
            name: Set(name.to_owned()),
            token_hash: Set(util::sha256_hex(&secret)),
            created_at: Set(util::now_ms()),
            last_used_at: Set(None),
            role: Set(role),
            ..Default::default()
        }
        .insert(&self.ctx.db)
        .await?;
        tracing::info!(token.id = row.id, role = %role, "API token created");
        self.ctx
            .audit(
                Entry::new("token.create")
                    .object("token", Some(row.id), &row.name)
                    .changes(Changes::new().field("role", (), role)),
            )
            .await;
        Ok(NewApiToken {
            token: row.into(),
            secret,
        })
    }

    /// Every API token, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        Ok(api_token::Entity::find()
            .order_by_asc(api_token::Column::Id)
            .all(&self.ctx.db)
            .await?
            .into_iter()
            .map(ApiToken::from)
            .collect())
    }

    /// Revokes a token: it is refused from its next request on.
    pub async fn revoke_token(&self, id: i64) -> Result<()> {
        self.ctx
            .authorize(Permission::Administer, "token.revoke")
            .await?;
        let row = api_token::Entity::find_by_id(id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("API token {id}")))?;
        api_token::Entity::delete_by_id(id)
            .exec(&self.ctx.db)
            .await?;
        tracing::info!(token.id = id, "API token revoked");
        self.ctx
            .audit(
                Entry::new("token.revoke")
                    .object("token", Some(id), &row.name)
                    .changes(Changes::new().field("role", row.role, ())),
            )
            .await;
        Ok(())
    }
}
