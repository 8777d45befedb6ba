//! Users gain a subscription secret, settings the subscription URL base:
//!
//! - `users.sub_secret`: the secret in the user's subscription URL (`/sub/{secret}`) and profile
//!   page (`/u/{secret}`): 24 random bytes from the OS, base64url without padding (32 chars);
//! - `users.sub_secret_hash`: SHA-256 (hex) of the secret, unique and indexed. Requests are
//!   looked up by the hash of the secret they carry, so the index comparison runs over a
//!   digest and its timing says nothing about how much of a guessed secret was right;
//! - `settings.subscription_url_base`: where subscription URLs point ("" = the panel's own
//!   scheme, host and port).
//!
//! Rows that exist when this runs get a fresh secret each, generated here in Rust (portable
//! SQL has no cryptographic random function); the unique indexes are created afterwards.

use base64::Engine as _;
use rand::RngCore as _;
use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{prelude::*, schema::*};
use sha2::{Digest as _, Sha256};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    SubSecret,
    SubSecretHash,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    SubscriptionUrlBase,
}

/// A new secret and its stored hash (the manager's `services::subscriptions::new_secret` makes the same).
fn secret() -> (String, String) {
    let mut buf = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf);
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    (secret, hash)
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string(Users::SubSecret).default("").to_owned(),
            string(Users::SubSecretHash).default("").to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        let ids = db
            .query_all(
                &Query::select()
                    .column(Users::Id)
                    .from(Users::Table)
                    .to_owned(),
            )
            .await?;
        for row in ids {
            let id: i64 = row.try_get("", "id")?;
            let (secret, hash) = secret();
            db.execute(
                &Query::update()
                    .table(Users::Table)
                    .value(Users::SubSecret, secret)
                    .value(Users::SubSecretHash, hash)
                    .and_where(Expr::col(Users::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        }
        for (name, column) in [
            ("idx_users_sub_secret", Users::SubSecret),
            ("idx_users_sub_secret_hash", Users::SubSecretHash),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Users::Table)
                        .col(column)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Settings::Table)
                    .add_column(string(Settings::SubscriptionUrlBase).default(""))
                    .to_owned(),
            )
            .await
    }
}
