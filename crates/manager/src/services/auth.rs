//! Administrators and sessions: first-run setup with a one-time token (no default credentials),
//! Argon2id passwords, session tokens stored hashed, a login rate limit, and Bearer checks for the
//! REST API (the configured admin token or a stored API token).

use super::{unique_violation, Ctx};
use crate::entity::{admin, api_token, session};
use crate::{util, Result, ServiceError};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, Set,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// How long a panel session lasts.
pub const SESSION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// Failed sign-ins allowed per (username, address) within [`LOGIN_WINDOW_MS`].
const LOGIN_FAILURES: usize = 5;
const LOGIN_WINDOW_MS: i64 = 5 * 60 * 1000;
pub const MIN_PASSWORD_LEN: usize = 12;

/// A signed-in administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub id: i64,
    pub username: String,
}

/// A new session: `token` goes into the cookie and is never stored in clear.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub expires_at: i64,
}

#[derive(Default)]
struct AuthState {
    /// One-time setup token while no admin exists.
    setup_token: Option<String>,
    /// Recent failed sign-in times per (username, address).
    failures: HashMap<(String, Option<IpAddr>), Vec<i64>>,
}

/// Authentication for the panel and the REST API.
#[derive(Clone)]
pub struct AuthService {
    pub(crate) ctx: Ctx,
    pub(crate) admin_token: Option<Arc<str>>,
    state: Arc<Mutex<AuthState>>,
}

fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("password hashing failed: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

fn check_credentials(username: &str, password: &str) -> Result<()> {
    let name_ok = (1..=64).contains(&username.chars().count())
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if !name_ok {
        return Err(ServiceError::invalid(
            "username",
            "must be 1–64 letters, digits or _ - . @",
        ));
    }
    if password.chars().count() < MIN_PASSWORD_LEN || password.len() > 1024 {
        return Err(ServiceError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

impl AuthService {
    pub(crate) fn new(ctx: Ctx, admin_token: Option<String>) -> AuthService {
        AuthService {
            ctx,
            admin_token: admin_token.map(Into::into),
            state: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True while no administrator exists.
    pub async fn needs_setup(&self) -> Result<bool> {
        Ok(admin::Entity::find().count(&self.ctx.db).await? == 0)
    }

    /// The one-time setup token, created on first call while no admin exists (printed at start).
    pub async fn setup_token(&self) -> Result<Option<String>> {
        if !self.needs_setup().await? {
            self.state().setup_token = None;
            return Ok(None);
        }
        let mut st = self.state();
        Ok(Some(
            st.setup_token
                .get_or_insert_with(|| util::random_hex(24))
                .clone(),
        ))
    }

    /// First-run setup: creates the first admin if `token` is the setup token, and signs in.
    pub async fn setup(&self, token: &str, username: &str, password: &str) -> Result<Session> {
        let valid = self
            .state()
            .setup_token
            .as_deref()
            .is_some_and(|t| util::secrets_equal(t, token));
        if !valid || !self.needs_setup().await? {
            return Err(ServiceError::Unauthorized);
        }
        let admin = self.create_admin(username, password).await?;
        self.state().setup_token = None;
        tracing::info!(
            admin.id = admin.id,
            "first administrator created through setup"
        );
        self.new_session(admin.id).await
    }

    /// Creates an administrator (CLI `admin create`, or setup).
    pub async fn create_admin(&self, username: &str, password: &str) -> Result<Admin> {
        let username = username.trim();
        check_credentials(username, password)?;
        let row = admin::ActiveModel {
            username: Set(username.to_owned()),
            password_hash: Set(hash_password(password)?),
            created_at: Set(util::now_ms()),
            ..Default::default()
        }
        .insert(&self.ctx.db)
        .await
        .map_err(|e| unique_violation(e, "username", "an administrator with this name exists"))?;
        Ok(Admin {
            id: row.id,
            username: row.username,
        })
    }

    /// Sets a new password and ends the admin's sessions (CLI `admin reset-password`).
    pub async fn reset_password(&self, username: &str, password: &str) -> Result<()> {
        check_credentials(username.trim(), password)?;
        let row = admin::Entity::find()
            .filter(admin::Column::Username.eq(username.trim()))
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("administrator {username}")))?;
        let id = row.id;
        let mut am = row.into_active_model();
        am.password_hash = Set(hash_password(password)?);
        am.update(&self.ctx.db).await?;
        session::Entity::delete_many()
            .filter(session::Column::AdminId.eq(id))
            .exec(&self.ctx.db)
            .await?;
        Ok(())
    }

    /// Signs in. Failures are rate limited per (username, client address).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Session> {
        let key = (username.trim().to_owned(), client_ip);
        let now = util::now_ms();
        {
            let mut st = self.state();
            let recent = st.failures.entry(key.clone()).or_default();
            recent.retain(|t| now - t < LOGIN_WINDOW_MS);
            if recent.len() >= LOGIN_FAILURES {
                return Err(ServiceError::RateLimited);
            }
        }
        let row = admin::Entity::find()
            .filter(admin::Column::Username.eq(key.0.as_str()))
            .one(&self.ctx.db)
            .await?;
        // Verify against a dummy hash for unknown names so timing does not reveal them.
        let dummy = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3d3ZJ8+1LxJ6qE3h7F5yB3jK8Zq0bQm7u0kq4Vd1r3c";
        let ok = verify_password(
            password,
            row.as_ref().map_or(dummy, |r| r.password_hash.as_str()),
        );
        match row {
            Some(admin) if ok => {
                self.state().failures.remove(&key);
                tracing::info!(admin.id = admin.id, "administrator signed in");
                self.new_session(admin.id).await
            }
            _ => {
                let mut st = self.state();
                st.failures.entry(key).or_default().push(now);
                // Keep the map bounded under a spray of names.
                if st.failures.len() > 10_000 {
                    st.failures
                        .retain(|_, v| v.iter().any(|t| now - t < LOGIN_WINDOW_MS));
                }
                Err(ServiceError::Unauthorized)
            }
        }
    }

    async fn new_session(&self, admin_id: i64) -> Result<Session> {
        let token = util::random_hex(32);
        let now = util::now_ms();
        let expires_at = now + SESSION_TTL_MS;
        session::ActiveModel {
            token_hash: Set(util::sha256_hex(&token)),
            admin_id: Set(admin_id),
            created_at: Set(now),
            expires_at: Set(expires_at),
            ..Default::default()
        }
        .insert(&self.ctx.db)
        .await?;
        Ok(Session { token, expires_at })
    }

    /// The admin behind a session cookie, if the session is valid.
    pub async fn admin_for_session(&self, token: &str) -> Result<Option<Admin>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let Some(s) = session::Entity::find()
            .filter(session::Column::TokenHash.eq(util::sha256_hex(token)))
            .one(&self.ctx.db)
            .await?
        else {
            return Ok(None);
        };
        if s.expires_at < util::now_ms() {
            session::Entity::delete_by_id(s.id)
                .exec(&self.ctx.db)
                .await?;
            return Ok(None);
        }
        Ok(admin::Entity::find_by_id(s.admin_id)
            .one(&self.ctx.db)
            .await?
            .map(|a| Admin {
                id: a.id,
                username: a.username,
            }))
    }

    /// Ends a session.
    pub async fn logout(&self, token: &str) -> Result<()> {
        session::Entity::delete_many()
            .filter(session::Column::TokenHash.eq(util::sha256_hex(token)))
            .exec(&self.ctx.db)
            .await?;
        Ok(())
    }

    /// Checks a REST Bearer token: the configured admin token or a stored API token.
    pub async fn check_bearer(&self, token: &str) -> Result<bool> {
        if token.is_empty() || token.len() > 256 {
            return Ok(false);
        }
        if let Some(t) = &self.admin_token {
            if util::secrets_equal(t, token) {
                return Ok(true);
            }
        }
        let found = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(util::sha256_hex(token)))
            .one(&self.ctx.db)
            .await?;
        if let Some(row) = found {
            let mut am = row.into_active_model();
            am.last_used_at = Set(Some(util::now_ms()));
            am.update(&self.ctx.db).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Creates a named API token; the clear token is returned once.
    pub async fn create_api_token(&self, name: &str) -> Result<String> {
        let name = name.trim();
        if !(1..=64).contains(&name.len()) {
            return Err(ServiceError::invalid("name", "must be 1–64 characters"));
        }
        let token = util::random_hex(32);
        api_token::ActiveModel {
            name: Set(name.to_owned()),
            token_hash: Set(util::sha256_hex(&token)),
            created_at: Set(util::now_ms()),
            last_used_at: Set(None),
            ..Default::default()
        }
        .insert(&self.ctx.db)
        .await?;
        Ok(token)
    }
}
