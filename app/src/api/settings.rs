//! Manager settings: read and update.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::SettingsView;

/// The current settings.
#[server(endpoint = "get_settings", output = super::Json)]
pub async fn get_settings() -> Result<SettingsView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let settings = services
        .settings
        .get()
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(crate::ssr::settings_view(settings))
}

/// The time zones the settings accept (the manager's tz database), for the settings form.
#[server(endpoint = "time_zones", output = super::Json)]
pub async fn time_zones() -> Result<Vec<String>, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    Ok(services.settings.time_zones())
}

/// Saves all settings at once.
#[server(endpoint = "update_settings", input = super::Json, output = super::Json)]
pub async fn update_settings(settings: SettingsView) -> Result<SettingsView, AppError> {
    use crate::{ssr, validate};
    let (services, _) = ssr::signed_in().await?;
    let host = validate::host("host", &settings.host)?;
    let proxy_url = validate::proxy_url(&settings.proxy_url)?;
    let traffic_ratio = validate::traffic_ratio(&settings.traffic_ratio.to_string())?;
    let networks = validate::networks(&settings.allowed_private_networks.join(","))?;
    let patch = manager::SettingsPatch {
        host: Some(host),
        ss_direct_port: Some(settings.ss_direct_port),
        ss_relay_port: Some(settings.ss_relay_port),
        ss_reverse_port: Some(settings.ss_reverse_port),
        ss_remote_port: Some(settings.ss_remote_port),
        proxy_url: Some(proxy_url),
        traffic_ratio: Some(traffic_ratio),
        allowed_private_networks: Some(networks),
        subscription_url_base: Some(settings.subscription_url_base.trim().to_owned()),
        time_zone: Some(rules::input::time_zone(&settings.time_zone)?),
    };
    let saved = services
        .settings
        .update(patch)
        .await
        .map_err(ssr::service_error)?;
    Ok(ssr::settings_view(saved))
}
