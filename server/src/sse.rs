//! `GET /events`: the event hub as Server-Sent Events, for signed-in admins (session cookie) or a
//! Bearer token. Each message is `event: <type>` + `data: <json>`; keep-alive comments flow while
//! idle. A subscriber that falls behind gets `event: resync` and should refetch. Every stream ends
//! when the manager shuts down ([`Shutdown`]), so open panels never hold the HTTP drain.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::StreamExt as _;
use manager::{ServiceError, Services};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// The manager's shutdown token, a request extension: event streams end when it is cancelled.
/// Without it (a router served by other means) a stream ends only with its client.
#[derive(Debug, Clone)]
pub struct Shutdown(pub CancellationToken);

pub async fn events(
    State(services): State<Services>,
    shutdown: Option<Extension<Shutdown>>,
    headers: HeaderMap,
) -> Response {
    match allowed(&services, &headers).await {
        Ok(true) => {}
        Ok(false) => return StatusCode::UNAUTHORIZED.into_response(),
        // Sessions or tokens could not be read: a 500 (logged there), not a sign-out.
        Err(e) => return crate::api::ApiError::from(e).into_response(),
    }
    let rx = services.events.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let ev = match rx.recv().await {
            Ok(ev) => SseEvent::default().event(ev.name()).data(ev.data()),
            Err(RecvError::Lagged(_)) => SseEvent::default()
                .event(manager::events::RESYNC)
                .data("{}"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(ev), rx))
    });
    let stopped = async move {
        match shutdown {
            Some(Extension(Shutdown(token))) => token.cancelled_owned().await,
            None => std::future::pending().await,
        }
    };
    let stream = stream.take_until(stopped);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A signed-in admin's session cookie or a valid Bearer token.
async fn allowed(services: &Services, headers: &HeaderMap) -> Result<bool, ServiceError> {
    if app::ssr::admin_from_headers(headers, services)
        .await?
        .is_some()
    {
        return Ok(true);
    }
    match crate::bearer(headers) {
        Some(t) => services.auth.check_bearer(t).await,
        None => Ok(false),
    }
}
