//! Administrators (list; add, change role or password, remove: owners only) and the audit log.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{AdminView, AuditFilter, AuditPageView};

/// Every administrator.
#[server(endpoint = "list_admins", output = super::Json)]
pub async fn list_admins() -> Result<Vec<AdminView>, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let admins = services
        .auth
        .list_admins()
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(admins.iter().map(crate::ssr::admin_view).collect())
}

/// Adds an administrator with `role`.
#[server(endpoint = "add_admin", input = super::Json, output = super::Json)]
pub async fn add_admin(
    username: String,
    password: String,
    confirm: String,
    role: rules::Role,
) -> Result<AdminView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let username = crate::validate::username(&username)?;
    crate::validate::new_password(&password, &confirm)?;
    let admin = services
        .auth
        .add_admin(manager::NewAdmin {
            username,
            password,
            role,
        })
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(crate::ssr::admin_view(&admin))
}

/// Changes an administrator's role.
#[server(endpoint = "set_admin_role", input = super::Json, output = super::Json)]
pub async fn set_admin_role(id: i64, role: rules::Role) -> Result<AdminView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let admin = services
        .auth
        .update_admin(
            id,
            manager::AdminPatch {
                role: Some(role),
                password: None,
            },
        )
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(crate::ssr::admin_view(&admin))
}

/// Removes an administrator (and ends their sessions).
#[server(endpoint = "delete_admin", input = super::Json, output = super::Json)]
pub async fn delete_admin(id: i64) -> Result<(), AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    services
        .auth
        .delete_admin(id)
        .await
        .map_err(crate::ssr::service_error)
}

/// One page of the audit log, newest first.
#[server(endpoint = "load_audit", input = super::Json, output = super::Json)]
pub async fn load_audit(filter: AuditFilter) -> Result<AuditPageView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let params = filter
        .to_params()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let query = manager::AuditQuery::from_params(&params).map_err(crate::ssr::service_error)?;
    let page = services
        .audit
        .page(query)
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(AuditPageView {
        entries: page
            .entries
            .into_iter()
            .map(crate::ssr::audit_view)
            .collect(),
        next: page.next,
    })
}
