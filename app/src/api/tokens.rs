//! API tokens for the REST API: list, create (the secret is returned once), revoke.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{CreatedToken, TokenView};

/// Every API token (never the secrets).
#[server(endpoint = "list_tokens", output = super::Json)]
pub async fn list_tokens() -> Result<Vec<TokenView>, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let tokens = services
        .auth
        .list_tokens()
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(tokens.into_iter().map(crate::ssr::token_view).collect())
}

/// Creates a named token; the secret is in the result, this once.
#[server(endpoint = "create_token", input = super::Json, output = super::Json)]
pub async fn create_token(name: String, role: rules::Role) -> Result<CreatedToken, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let created = services
        .auth
        .create_token(&name, role)
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(CreatedToken {
        token: crate::ssr::token_view(created.token),
        secret: created.secret,
    })
}

/// Revokes a token: requests carrying it get 401 from now on.
#[server(endpoint = "revoke_token", input = super::Json, output = super::Json)]
pub async fn revoke_token(id: i64) -> Result<(), AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    services
        .auth
        .revoke_token(id)
        .await
        .map_err(crate::ssr::service_error)
}
