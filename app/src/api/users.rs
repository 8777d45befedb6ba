//! Proxy users: list, create, edit quota / enabled, delete.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{
    NewUserForm, UserAccess, UserDetail, UserEdit, UserView, UsersPage, UsersQuery,
};

/// One page of users: filtered, sorted and paged by the manager (keyset, as `GET /v1/users`).
#[server(endpoint = "list_users", input = super::Json, output = super::Json)]
pub async fn list_users(query: UsersQuery) -> Result<UsersPage, AppError> {
    use crate::ssr;
    let (services, _) = ssr::signed_in().await?;
    let params = query.to_params();
    let query = manager::services::users::UserQuery::from_params(
        params.iter().map(|(k, v)| (*k, v.as_str())),
    )
    .map_err(ssr::service_error)?;
    let page = services
        .users
        .page(query)
        .await
        .map_err(ssr::service_error)?;
    Ok(UsersPage {
        users: page.users.into_iter().map(ssr::user_view).collect(),
        total: page.total,
        next: page.next,
    })
}

/// One user and their client links (with QR codes).
#[server(endpoint = "user_detail", input = super::Json, output = super::Json)]
pub async fn load_user_detail(id: i64) -> Result<UserDetail, AppError> {
    use crate::ssr;
    let (services, _) = ssr::signed_in().await?;
    let user = services.users.get(id).await.map_err(ssr::service_error)?;
    let links = services.users.links(id).await.map_err(ssr::service_error)?;
    let nodes = services.nodes.list().await.map_err(ssr::service_error)?;
    Ok(UserDetail {
        user: ssr::user_view(user),
        links: links
            .into_iter()
            .map(|l| ssr::link_view(l, &nodes))
            .collect(),
    })
}

/// Creates a user.
#[server(endpoint = "create_user", input = super::Json, output = super::Json)]
pub async fn create_user(form: NewUserForm) -> Result<UserView, AppError> {
    use crate::{ssr, validate};
    let (services, _) = ssr::signed_in().await?;
    let name = validate::user_name(&form.name)?;
    let quota_bytes = validate::quota_bytes(form.quota_bytes)?;
    let user = services
        .users
        .create(manager::NewUser {
            name,
            quota_bytes,
            enabled: form.enabled,
            ..Default::default()
        })
        .await
        .map_err(ssr::service_error)?;
    Ok(ssr::user_view(user))
}

/// Changes a user's quota and enabled flag.
#[server(endpoint = "update_user", input = super::Json, output = super::Json)]
pub async fn update_user(id: i64, edit: UserEdit) -> Result<UserView, AppError> {
    use crate::{ssr, validate};
    let (services, _) = ssr::signed_in().await?;
    let quota_bytes = validate::quota_bytes(edit.quota_bytes)?;
    // The checkbox shows the current state: only a change is the administrator's choice (an
    // unchanged box on a user a limit disabled must not turn that into a manual disable).
    let current = services.users.get(id).await.map_err(ssr::service_error)?;
    let patch = manager::UserPatch {
        quota_bytes: Some(quota_bytes),
        enabled: (edit.enabled != current.enabled).then_some(edit.enabled),
        ..Default::default()
    };
    let user = services
        .users
        .update(id, patch)
        .await
        .map_err(ssr::service_error)?;
    Ok(ssr::user_view(user))
}

/// Sets when a user's access ends: a fixed time and/or a period from the first use. A later
/// expiry enables a user disabled because the previous one passed; a past one disables at once.
#[server(endpoint = "update_user_access", input = super::Json, output = super::Json)]
pub async fn update_user_access(id: i64, access: UserAccess) -> Result<UserView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    if let Some(at) = access.expire_at {
        rules::input::expire_at(at)?;
    }
    if let Some(ms) = access.expire_after_first_use {
        rules::input::expire_after_first_use(ms)?;
    }
    let user = services
        .users
        .update(
            id,
            manager::UserPatch {
                expire_at: Some(access.expire_at),
                expire_after_first_use: Some(access.expire_after_first_use),
                ..Default::default()
            },
        )
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(crate::ssr::user_view(user))
}

/// Sets when a user's usage is zeroed on its own (at midnight in the settings' time zone).
#[server(endpoint = "update_user_reset", input = super::Json, output = super::Json)]
pub async fn update_user_reset(
    id: i64,
    strategy: rules::ResetStrategy,
    day: i32,
) -> Result<UserView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    rules::input::reset_day(day)?;
    let user = services
        .users
        .update(
            id,
            manager::UserPatch {
                reset_strategy: Some(strategy),
                reset_day: Some(day),
                ..Default::default()
            },
        )
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(crate::ssr::user_view(user))
}

/// Zeroes a user's usage now (a user the quota disabled is enabled again).
#[server(endpoint = "reset_user_usage", input = super::Json, output = super::Json)]
pub async fn reset_user_usage(id: i64) -> Result<UserView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let mut users = services
        .users
        .reset_usage(&[id])
        .await
        .map_err(crate::ssr::service_error)?;
    users
        .pop()
        .map(crate::ssr::user_view)
        .ok_or_else(|| AppError::NotFound("this user".to_owned()))
}

/// Zeroes the usage of every user in `ids`, all or none: an unknown id resets nobody.
#[server(endpoint = "reset_users_usage", input = super::Json, output = super::Json)]
pub async fn reset_users_usage(ids: Vec<i64>) -> Result<Vec<UserView>, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let users = services
        .users
        .reset_usage(&ids)
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(users.into_iter().map(crate::ssr::user_view).collect())
}

/// Enables (or disables, a manual disable) every user in `ids`, all or none: an unknown id, or
/// a user whose limit is reached when enabling, changes nobody.
#[server(endpoint = "set_users_enabled", input = super::Json, output = super::Json)]
pub async fn set_users_enabled(ids: Vec<i64>, enabled: bool) -> Result<Vec<UserView>, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let users = services
        .users
        .set_enabled(&ids, enabled)
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(users.into_iter().map(crate::ssr::user_view).collect())
}

/// Deletes every user in `ids`, all or none; returns how many.
#[server(endpoint = "delete_users", input = super::Json, output = super::Json)]
pub async fn delete_users(ids: Vec<i64>) -> Result<usize, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    services
        .users
        .delete_many(&ids)
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(ids.len())
}

/// Deletes a user.
#[server(endpoint = "delete_user", input = super::Json, output = super::Json)]
pub async fn delete_user(id: i64) -> Result<(), AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    services
        .users
        .delete(id)
        .await
        .map_err(crate::ssr::service_error)
}

/// A user's subscription as the admin's user page shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserSubscription {
    /// `{base}/sub/{secret}`.
    pub url: String,
    /// `{base}/u/{secret}`: the user's profile page.
    pub page_url: String,
    /// The URL as an inline `<svg>` QR code.
    pub qr_svg: Option<String>,
}

#[cfg(feature = "ssr")]
async fn user_subscription(
    services: &manager::Services,
    user: &manager::User,
) -> Result<UserSubscription, AppError> {
    let url = services
        .subscriptions
        .url(user)
        .await
        .map_err(crate::ssr::service_error)?;
    let base = url
        .strip_suffix(&format!("/sub/{}", user.sub_secret))
        .unwrap_or_default();
    Ok(UserSubscription {
        page_url: format!("{base}/u/{}", user.sub_secret),
        qr_svg: manager::links::qr_svg(&url),
        url,
    })
}

/// A user's subscription URL, profile page and QR code.
#[server(endpoint = "user_subscription", input = super::Json, output = super::Json)]
pub async fn load_user_subscription(id: i64) -> Result<UserSubscription, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let user = services
        .users
        .get(id)
        .await
        .map_err(crate::ssr::service_error)?;
    user_subscription(&services, &user).await
}

/// Gives a user a new subscription secret; the old URL answers 404 from now on.
#[server(endpoint = "rotate_subscription", input = super::Json, output = super::Json)]
pub async fn rotate_subscription(id: i64) -> Result<UserSubscription, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let user = services
        .subscriptions
        .rotate(id)
        .await
        .map_err(crate::ssr::service_error)?;
    user_subscription(&services, &user).await
}
