//! Nodes gain a name (`nodes.name`), unique, which the panel and end users' server lists show.
//! Rows that exist when this runs are named `node-{id}`, the name a node gets when it is added
//! without one; the unique index is created afterwards.

use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Nodes {
    Table,
    Id,
    Name,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .add_column(string(Nodes::Name).default(""))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let ids = db
            .query_all(
                &Query::select()
                    .column(Nodes::Id)
                    .from(Nodes::Table)
                    .to_owned(),
            )
            .await?;
        for row in ids {
            let id: i64 = row.try_get("", "id")?;
            db.execute(
                &Query::update()
                    .table(Nodes::Table)
                    .value(Nodes::Name, format!("node-{id}"))
                    .and_where(Expr::col(Nodes::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_nodes_name")
                    .table(Nodes::Table)
                    .col(Nodes::Name)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
