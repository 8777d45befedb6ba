//! Sign-in, sign-out, first-run setup and "who am I".

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::AdminView;

/// Whether no administrator exists yet (the sign-in page then explains how to create one).
#[server(endpoint = "needs_setup", output = super::Json)]
pub async fn needs_setup() -> Result<bool, AppError> {
    let services = crate::ssr::services()?;
    services
        .auth
        .needs_setup()
        .await
        .map_err(crate::ssr::service_error)
}

/// The signed-in administrator.
#[server(endpoint = "whoami", output = super::Json)]
pub async fn whoami() -> Result<AdminView, AppError> {
    let (_, admin) = crate::ssr::signed_in().await?;
    Ok(crate::ssr::admin_view(&admin))
}

/// Signs in: sets the session cookie and redirects to the dashboard.
#[server(endpoint = "login", output = super::Json)]
pub async fn login(username: String, password: String) -> Result<(), AppError> {
    use crate::ssr;
    let services = ssr::services()?;
    let username = crate::validate::username(&username)?;
    // X-Forwarded-For counts only when the peer is a `--trusted-proxy`.
    let client_ip = ssr::request_client_ip(&services)?;
    let session = services
        .auth
        .login(&username, &password, client_ip)
        .await
        .map_err(ssr::credential_error(
            "password",
            "Wrong user name or password.",
        ))?;
    let now = crate::format::now_ms();
    ssr::set_cookie(&ssr::session_cookie(
        &session.token,
        session.expires_at,
        now,
        ssr::request_is_https(&services)?,
    ))?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Creates the first administrator with the one-time setup token, then signs in.
#[server(endpoint = "setup", output = super::Json)]
pub async fn setup(
    token: String,
    username: String,
    password: String,
    confirm: String,
) -> Result<(), AppError> {
    use crate::ssr;
    let services = ssr::services()?;
    let username = crate::validate::username(&username)?;
    crate::validate::new_password(&password, &confirm)?;
    let session = services
        .auth
        .setup(&token, &username, &password, ssr::request_client_ip(&services)?)
        .await
        .map_err(ssr::credential_error(
        crate::error::FORM,
        "This setup link is invalid or was already used. Use the URL arch-manager printed last, \
             or `arch-manager admin create`.",
    ))?;
    let now = crate::format::now_ms();
    ssr::set_cookie(&ssr::session_cookie(
        &session.token,
        session.expires_at,
        now,
        ssr::request_is_https(&services)?,
    ))?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Signs out: ends the session, clears the cookie, redirects to the sign-in page.
#[server(endpoint = "logout", output = super::Json)]
pub async fn logout() -> Result<(), AppError> {
    use crate::ssr;
    let services = ssr::services()?;
    let headers = ssr::request_headers().await?;
    if let Some(token) = ssr::session_token(&headers) {
        services
            .auth
            .logout(token)
            .await
            .map_err(ssr::service_error)?;
    }
    ssr::set_cookie(&ssr::clear_session_cookie(ssr::request_is_https(
        &services,
    )?))?;
    leptos_axum::redirect("/login");
    Ok(())
}
