//! Initial schema: admins, sessions, API tokens, users, nodes (with their internal keys and ports),
//! settings (one row), and stats cursors for exactly-once accounting.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Admins {
    Table,
    Id,
    Username,
    PasswordHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    TokenHash,
    AdminId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    Name,
    TokenHash,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Name,
    Password,
    Method,
    Enabled,
    DisabledReason,
    QuotaBytes,
    UsageBytes,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    Id,
    Host,
    HttpPort,
    HttpToken,
    UsageBytes,
    PushStatus,
    PullStatus,
    PushedAt,
    PulledAt,
    AppliedVersion,
    LastError,
    RelayKey,
    RelayPort,
    InternalKey,
    InternalPort,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Id,
    Host,
    SsDirectPort,
    SsRelayPort,
    SsReversePort,
    SsRemotePort,
    ProxyUrl,
    TrafficRatio,
    ConfigUpdatedAt,
}

#[derive(DeriveIden)]
enum StatsCursors {
    Table,
    NodeId,
    Epoch,
    Name,
    Value,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Admins::Table)
                    .col(big_pk_auto(Admins::Id))
                    .col(string_uniq(Admins::Username))
                    .col(string(Admins::PasswordHash))
                    .col(big_integer(Admins::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(big_pk_auto(Sessions::Id))
                    .col(string_uniq(Sessions::TokenHash))
                    .col(big_integer(Sessions::AdminId))
                    .col(big_integer(Sessions::CreatedAt))
                    .col(big_integer(Sessions::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::AdminId)
                            .to(Admins::Table, Admins::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(big_pk_auto(ApiTokens::Id))
                    .col(string(ApiTokens::Name))
                    .col(string_uniq(ApiTokens::TokenHash))
                    .col(big_integer(ApiTokens::CreatedAt))
                    .col(big_integer_null(ApiTokens::LastUsedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(big_pk_auto(Users::Id))
                    .col(string_uniq(Users::Name))
                    .col(string(Users::Password))
                    .col(string(Users::Method))
                    .col(boolean(Users::Enabled))
                    .col(string_null(Users::DisabledReason))
                    .col(big_integer(Users::QuotaBytes))
                    .col(big_integer(Users::UsageBytes))
                    .col(big_integer(Users::CreatedAt))
                    .col(big_integer(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Nodes::Table)
                    .col(big_pk_auto(Nodes::Id))
                    .col(string(Nodes::Host))
                    .col(integer(Nodes::HttpPort))
                    .col(string(Nodes::HttpToken))
                    .col(big_integer(Nodes::UsageBytes))
                    .col(string(Nodes::PushStatus))
                    .col(string(Nodes::PullStatus))
                    .col(big_integer(Nodes::PushedAt))
                    .col(big_integer(Nodes::PulledAt))
                    .col(string_null(Nodes::AppliedVersion))
                    .col(string_null(Nodes::LastError))
                    .col(string(Nodes::RelayKey))
                    .col(integer(Nodes::RelayPort))
                    .col(string(Nodes::InternalKey))
                    .col(integer(Nodes::InternalPort))
                    .col(big_integer(Nodes::CreatedAt))
                    .col(big_integer(Nodes::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("nodes_host_port")
                    .table(Nodes::Table)
                    .col(Nodes::Host)
                    .col(Nodes::HttpPort)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(big_integer(Settings::Id).primary_key())
                    .col(string(Settings::Host))
                    .col(integer(Settings::SsDirectPort))
                    .col(integer(Settings::SsRelayPort))
                    .col(integer(Settings::SsReversePort))
                    .col(integer(Settings::SsRemotePort))
                    .col(string(Settings::ProxyUrl))
                    .col(double(Settings::TrafficRatio))
                    .col(big_integer(Settings::ConfigUpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StatsCursors::Table)
                    .col(big_integer(StatsCursors::NodeId))
                    .col(string(StatsCursors::Epoch))
                    .col(string(StatsCursors::Name))
                    .col(big_integer(StatsCursors::Value))
                    .primary_key(
                        Index::create()
                            .col(StatsCursors::NodeId)
                            .col(StatsCursors::Epoch)
                            .col(StatsCursors::Name),
                    )
                    .to_owned(),
            )
            .await
    }
}
