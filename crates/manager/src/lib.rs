//! The Arch control plane as a library: sea-orm entities, the service layer (users, nodes,
//! settings, auth), exactly-once accounting, the config writer, the node client and the
//! coordinator loops, plus the typed event hub.
//!
//! It knows nothing of axum or Leptos: `server` (REST, SSE, CLI) and `app` (panel server
//! functions) both call [`Services`]. Errors are [`ServiceError`]; binaries wrap them with anyhow.

pub mod accounting;
pub mod client_addr;
pub mod coordinator;
pub mod db;
pub mod desired;
pub mod entity;
mod error;
pub mod events;
pub mod history;
pub mod links;
pub mod node_client;
pub mod resets;
pub mod services;
pub mod util;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

pub use client_addr::{Cidr, TrustedProxies};
pub use coordinator::{Coordinator, CoordinatorConfig};
pub use desired::DesiredVersions;
pub use entity::node::NodeStatus;
pub use error::{Result, ServiceError};
pub use events::{Event, Events};
pub use rules::{Permission, Role};
pub use sea_orm::{ConnectionTrait, DatabaseConnection};
pub use services::admins::{AdminPatch, NewAdmin};
pub use services::api_tokens::{ApiToken, NewApiToken};
pub use services::audit::{Actor, ActorKind, AuditEntry, AuditPage, AuditQuery, AuditService};
pub use services::auth::{Admin, AuthService, Session};
pub use services::dashboard::{Dashboard, DashboardService};
pub use services::nodes::{NewNode, Node, NodePatch, NodeService};
pub use services::settings::{Settings, SettingsPatch, SettingsService};
pub use services::subscriptions::{PublicPanel, Subscription, SubscriptionService};
pub use services::users::{NewUser, User, UserPatch, UserService};
pub use xray::api::NodeInfo;

/// Everything the HTTP layers call. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub users: UserService,
    pub nodes: NodeService,
    pub settings: SettingsService,
    pub subscriptions: SubscriptionService,
    pub auth: AuthService,
    pub audit: AuditService,
    pub dashboard: DashboardService,
    pub events: Events,
}

/// How to build the manager.
#[derive(Debug, Clone)]
pub struct Options {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Bearer token accepted on `/v1` for automation.
    pub admin_token: Option<String>,
    pub coordinator: CoordinatorConfig,
    /// Timeout of each call to a node.
    pub node_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    pub trusted_proxies: TrustedProxies,
}

/// An opened manager: services for the HTTP layers, the coordinator to run, the pool to close.
pub struct Manager {
    pub services: Services,
    pub coordinator: Arc<Coordinator>,
    pub db: DatabaseConnection,
}

impl Manager {
    /// Connects, migrates and wires the services. `engine` is the local data plane, if any.
    pub async fn open(opts: Options, engine: Option<engine::Engine>) -> Result<Manager> {
        let db = db::connect(&opts.database_url).await?;
        db::migrate(&db).await?;
        Manager::with_db(db, opts, engine)
    }

    /// Wires services around an existing (migrated) pool. Fails only when the node client
    /// cannot be built.
    pub fn with_db(
        db: DatabaseConnection,
        opts: Options,
        engine: Option<engine::Engine>,
    ) -> Result<Manager> {
        let events = Events::default();
        let changes = services::Changes::default();
        let client = Arc::new(
            node_client::NodeClient::new(opts.node_timeout).map_err(ServiceError::NodeClient)?,
        );
        let ctx = services::Ctx {
            db: db.clone(),
            events: events.clone(),
            changes,
            desired: DesiredVersions::default(),
        };
        let coordinator = Arc::new(Coordinator::new(
            ctx.clone(),
            client.clone(),
            engine.clone(),
            opts.coordinator,
        ));
        let services = Services {
            users: UserService { ctx: ctx.clone() },
            nodes: NodeService {
                ctx: ctx.clone(),
                client,
                engine,
                coordinator: coordinator.clone(),
            },
            settings: SettingsService { ctx: ctx.clone() },
            subscriptions: SubscriptionService::new(ctx.clone()),
            audit: AuditService { ctx: ctx.clone() },
            dashboard: DashboardService { ctx: ctx.clone() },
            auth: AuthService::new(ctx, opts.admin_token, opts.trusted_proxies),
            events,
        };
        Ok(Manager {
            services,
            coordinator,
            db,
        })
    }
}
