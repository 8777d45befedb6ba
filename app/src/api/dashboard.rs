//! The dashboard's data: the manager at a glance.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::DashboardView;

/// Users by state, traffic today and this month, node health, the last 24 hours of traffic and
/// the last config pushes.
#[server(endpoint = "load_dashboard", output = super::Json)]
pub async fn load_dashboard() -> Result<DashboardView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let dashboard = services
        .dashboard
        .get()
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(crate::ssr::dashboard_view(dashboard))
}
