//! Usage history for the panel's charts, of a user or of a node.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{UsageOf, UsageSeries, UsageStep};

/// The last 24 hours by hour, or the last 30 days by day, of a user's or a node's usage.
#[server(endpoint = "load_usage", input = super::Json, output = super::Json)]
pub async fn load_usage(of: UsageOf, step: UsageStep) -> Result<UsageSeries, AppError> {
    use crate::ssr;
    let (services, _) = ssr::signed_in().await?;
    let now = manager::util::now_ms();
    let size = ssr::history_step(step).ms();
    let from = ssr::history_step(step).bucket(now) - (step.buckets() - 1) * size;
    // Up to now, the current bucket included.
    let to = now + 1;
    let bucket = ssr::history_step(step);
    let points = match of {
        UsageOf::User(id) => services.users.usage_history(id, bucket, from, to).await,
        UsageOf::Node(id) => services.nodes.usage_history(id, bucket, from, to).await,
    }
    .map_err(ssr::service_error)?;
    // Hours are labelled in the settings' time zone.
    let zone = services
        .settings
        .get()
        .await
        .map_err(ssr::service_error)?
        .time_zone;
    Ok(ssr::usage_series(step, &points, now, &zone))
}
