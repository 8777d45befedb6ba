//! sea-orm entities of the manager database (tables created by the `migration` crate).

pub mod admin;
pub mod api_token;
pub mod audit_log;
pub mod node;
pub mod session;
pub mod settings;
pub mod stats_cursor;
pub mod usage_history;
pub mod user;
