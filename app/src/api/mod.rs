//! Server functions of the panel (`POST /api/<name>`), one module per area.
//!
//! Each body is a few lines: take `manager::Services` from context (via `crate::ssr`), check the
//! session, run the shared validation, call the service and map its error into
//! [`crate::AppError`]. Everything else lives in the manager crate, which also checks the
//! administrator's role on every change (the panel runs each request as its administrator).

pub mod admins;
pub mod auth;
pub mod dashboard;
pub mod nodes;
pub mod settings;
pub mod tokens;
pub mod usage;
pub mod users;

pub use admins::*;
pub use auth::*;
pub use dashboard::*;
pub use nodes::*;
pub use settings::*;
pub use tokens::*;
pub use usage::*;
pub use users::*;
