//! Forward-only schema migrations of the arch-manager database, portable between SQLite and
//! PostgreSQL. Owns table layout only; entities and queries live in the `manager` crate.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_init;
mod m20261130_000001_private_networks;
mod m20261201_000001_node_channel;
mod m20261201_000002_subscriptions;
mod m20261202_000001_node_names;
mod m20261202_000002_expiry;
mod m20261203_000001_resets_history;
mod m20261204_000001_user_pages;
mod m20261205_000001_roles_audit;
mod m20261206_000001_dashboard_index;
mod m20261206_000002_name_search;

/// The ordered list of migrations.
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_init::Migration),
            Box::new(m20261130_000001_private_networks::Migration),
            Box::new(m20261201_000001_node_channel::Migration),
            Box::new(m20261201_000002_subscriptions::Migration),
            Box::new(m20261202_000001_node_names::Migration),
            Box::new(m20261202_000002_expiry::Migration),
            Box::new(m20261203_000001_resets_history::Migration),
            Box::new(m20261204_000001_user_pages::Migration),
            Box::new(m20261205_000001_roles_audit::Migration),
            Box::new(m20261206_000001_dashboard_index::Migration),
            Box::new(m20261206_000002_name_search::Migration),
        ]
    }
}
