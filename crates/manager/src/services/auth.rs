//! Administrators and sessions: first-run setup with a one-time token (no default credentials),
//! Argon2id passwords, session tokens stored hashed, sign-in limits (see `login_limit`), and
//! Bearer checks for the REST API (the configured admin token or a stored API token, see
//! `api_tokens`).
//!
//! Argon2 is slow on purpose, so hashing and verifying run on the blocking pool, at most one per
//! CPU at a time ([`Hasher`]): a burst of sign-ins queues there instead of stalling the async
//! runtime that serves every other request.

use super::audit::{Actor, Changes, Entry, Outcome};
use super::login_limit::LoginLimits;
use super::{unique_violation, Ctx};
use crate::client_addr::TrustedProxies;
use crate::entity::{admin, session};
use crate::{util, Result, ServiceError};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rules::Role;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, Set,
};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// How long a panel session lasts.
pub const SESSION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// An administrator (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Admin {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// Unix ms.
    pub created_at: i64,
}

impl From<admin::Model> for Admin {
    fn from(a: admin::Model) -> Admin {
        Admin {
            id: a.id,
            username: a.username,
            role: a.role,
            created_at: a.created_at,
        }
    }
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
    limits: LoginLimits,
}

/// Authentication for the panel and the REST API.
#[derive(Clone)]
pub struct AuthService {
    pub(crate) ctx: Ctx,
    pub(crate) admin_token: Option<Arc<str>>,
    state: Arc<Mutex<AuthState>>,
    pub(crate) hasher: Hasher,
    trusted_proxies: Arc<TrustedProxies>,
}

/// Runs Argon2 on the blocking pool with bounded concurrency.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Hasher {
    /// At most `concurrency` hashes at once (at least one).
    pub fn new(concurrency: usize) -> Hasher {
        Hasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// One per CPU.
    pub fn per_cpu() -> Hasher {
        Hasher::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ServiceError::Internal("password hasher closed".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ServiceError::Internal(format!("password hashing task failed: {e}")))
    }

    /// An Argon2id PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| ServiceError::Internal(format!("password hashing failed: {e}")))
        })
        .await?
    }

    /// Whether `password` matches the PHC string.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool> {
        let (password, phc) = (password.to_owned(), phc.to_owned());
        self.run(move || {
            PasswordHash::new(&phc).is_ok_and(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
    }
}

/// The administrator's name, trimmed, when it and the password pass the shared rules.
fn check_credentials(username: &str, password: &str) -> Result<String> {
    let username = rules::input::admin_name(username)?;
    rules::input::password(password)?;
    Ok(username)
}

impl AuthService {
    pub(crate) fn new(
        ctx: Ctx,
        admin_token: Option<String>,
        trusted_proxies: TrustedProxies,
    ) -> AuthService {
        AuthService {
            ctx,
            admin_token: admin_token.map(Into::into),
            state: Arc::default(),
            hasher: Hasher::per_cpu(),
            trusted_proxies: Arc::new(trusted_proxies),
        }
    }

    /// The client address of a request from TCP peer `peer` with these `X-Forwarded-For`
    /// values: the header is believed only from a `--trusted-proxy`.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        self.trusted_proxies.client_ip(peer, forwarded_for)
    }

    /// Whether `peer` is one of the operator's reverse proxies (whose `X-Forwarded-*` headers
    /// are believed).
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.contains(peer)
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
    /// The token is taken before anything is awaited, so of concurrent uses exactly one goes on;
    /// it is given back only if that use failed on its input (bad name or password).
    pub async fn setup(
        &self,
        token: &str,
        username: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Session> {
        let taken = {
            let mut st = self.state();
            let valid = st
                .setup_token
                .as_deref()
                .is_some_and(|t| util::secrets_equal(t, token));
            if valid {
                st.setup_token.take()
            } else {
                None
            }
        };
        let Some(taken) = taken else {
            return Err(ServiceError::Unauthorized);
        };
        let created = match self.needs_setup().await {
            Ok(true) => self.insert_admin(username, password, Role::Owner).await,
            Ok(false) => Err(ServiceError::Unauthorized),
            Err(e) => Err(e),
        };
        let admin = match created {
            Ok(admin) => admin,
            Err(e) => {
                if matches!(
                    e,
                    ServiceError::Invalid { .. } | ServiceError::Conflict { .. }
                ) {
                    self.state().setup_token.get_or_insert(taken);
                }
                return Err(e);
            }
        };
        tracing::info!(
            admin.id = admin.id,
            "first administrator created through setup"
        );
        let actor = Actor::admin(admin.id, &admin.username, admin.role, client_ip);
        self.ctx
            .record(
                &actor,
                Entry::new("admin.setup")
                    .object("admin", Some(admin.id), &admin.username)
                    .changes(Changes::new().field("role", (), admin.role)),
            )
            .await;
        self.new_session(admin.id).await
    }

    /// Creates an owner (CLI `admin create`). People add administrators with
    /// [`AuthService::add_admin`], which checks the caller's role.
    pub async fn create_admin(&self, username: &str, password: &str) -> Result<Admin> {
        self.insert_admin(username, password, Role::Owner).await
    }

    pub(crate) async fn insert_admin(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<Admin> {
        let username = check_credentials(username, password)?;
        let row = admin::ActiveModel {
            username: Set(username),
            password_hash: Set(self.hasher.hash(password).await?),
            created_at: Set(util::now_ms()),
            role: Set(role),
            ..Default::default()
        }
        .insert(&self.ctx.db)
        .await
        .map_err(|e| unique_violation(e, "username", "an administrator with this name exists"))?;
        Ok(Admin::from(row))
    }

    /// Sets a new password and ends the admin's sessions (CLI `admin reset-password`).
    pub async fn reset_password(&self, username: &str, password: &str) -> Result<()> {
        let username = check_credentials(username, password)?;
        let row = admin::Entity::find()
            .filter(admin::Column::Username.eq(&username))
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("administrator {username}")))?;
        let id = row.id;
        let mut am = row.into_active_model();
        am.password_hash = Set(self.hasher.hash(password).await?);
        am.update(&self.ctx.db).await?;
        session::Entity::delete_many()
            .filter(session::Column::AdminId.eq(id))
            .exec(&self.ctx.db)
            .await?;
        Ok(())
    }

    /// Signs in. Failures slow down the account (exponential backoff) and the client address
    /// separately; see `login_limit`.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Session> {
        let username = username.trim();
        if !self
            .state()
            .limits
            .allowed(username, client_ip, util::now_ms())
        {
            return Err(ServiceError::RateLimited);
        }
        let row = admin::Entity::find()
            .filter(admin::Column::Username.eq(username))
            .one(&self.ctx.db)
            .await?;
        // Verify against a dummy hash for unknown names so timing does not reveal them.
        let dummy = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3d3ZJ8+1LxJ6qE3h7F5yB3jK8Zq0bQm7u0kq4Vd1r3c";
        let ok = self
            .hasher
            .verify(
                password,
                row.as_ref().map_or(dummy, |r| r.password_hash.as_str()),
            )
            .await?;
        match row {
            Some(admin) if ok => {
                self.state().limits.succeeded(username, client_ip);
                tracing::info!(admin.id = admin.id, "administrator signed in");
                let actor = Actor::admin(admin.id, &admin.username, admin.role, client_ip);
                self.ctx
                    .record(
                        &actor,
                        Entry::new("sign-in").object("admin", Some(admin.id), &admin.username),
                    )
                    .await;
                self.new_session(admin.id).await
            }
            _ => {
                self.state()
                    .limits
                    .failed(username, client_ip, util::now_ms());
                // The name only when it is an administrator's: whatever else was typed there
                // (a password, by mistake) stays out of the log.
                let mut actor = Actor::anonymous(client_ip);
                let name = match &row {
                    Some(r) => {
                        actor.id = Some(r.id);
                        r.username.clone()
                    }
                    None => "(unknown name)".to_owned(),
                };
                actor.name = name.clone();
                self.ctx
                    .record(
                        &actor,
                        Entry::new("sign-in")
                            .object("admin", actor.id, &name)
                            .outcome(Outcome::Failed),
                    )
                    .await;
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
            .map(Admin::from))
    }

    /// Ends a session.
    pub async fn logout(&self, token: &str) -> Result<()> {
        session::Entity::delete_many()
            .filter(session::Column::TokenHash.eq(util::sha256_hex(token)))
            .exec(&self.ctx.db)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Hasher;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(flavor = "current_thread")]
    async fn hashing_runs_off_the_async_thread() {
        let here = std::thread::current().id();
        let there = Hasher::new(1)
            .run(|| std::thread::current().id())
            .await
            .expect("run");
        assert_ne!(here, there, "Argon2 would block the runtime's thread");
        // A real hash and its check, through the same path.
        let h = Hasher::new(1);
        let phc = h.hash("correct horse").await.expect("hash");
        assert!(h.verify("correct horse", &phc).await.expect("verify"));
        assert!(!h.verify("wrong horse", &phc).await.expect("verify"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_the_configured_number_of_hashes_run_at_once() {
        let hasher = Hasher::new(2);
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut jobs = Vec::new();
        for _ in 0..8 {
            let (hasher, now, most) = (hasher.clone(), now.clone(), most.clone());
            jobs.push(tokio::spawn(async move {
                hasher
                    .run(move || {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                    .expect("run");
            }));
        }
        for j in jobs {
            j.await.expect("join");
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} hashes ran at once");
    }
}
