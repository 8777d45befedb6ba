//! `GET /sub/{secret}`: a user's subscription in the format their client app reads.
//!
//! In order: the per-address rate limit (429 with `Retry-After`; the address as the sign-in
//! limits see it, `X-Forwarded-For` only from a `--trusted-proxy`), the format (`?format=`, else
//! the `User-Agent`; an unknown `?format=` is a 400 whatever the secret), the lookup (the same
//! database work for a known and an unknown secret; an unknown one gets [`not_found`], the same
//! bytes every time), then the document with the headers clients read. A browser is sent to the
//! profile page (303). Responses are never cached (`Cache-Control: no-store`) and never carry a
//! referrer onwards. The secret is never logged: log lines name the user id, and
//! [`redacted_path`] keeps it out of the request spans.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use manager::Services;
use std::collections::HashMap;
use subscription::Choice;

/// The `/sub` router (state: the services).
pub fn routes(services: Services) -> Router {
    Router::new()
        .route("/sub/{secret}", get(serve))
        .with_state(services)
}

/// `path` with the secret of a subscription or profile URL replaced by `…`, for logs.
pub fn redacted_path(path: &str) -> String {
    for prefix in ["/sub/", "/u/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            if !rest.is_empty() {
                return format!("{prefix}…");
            }
        }
    }
    path.to_owned()
}

/// Headers every answer of this route carries.
fn private(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The answer to an unknown secret: the same status, headers and body every time.
pub fn not_found() -> Response {
    private(
        (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found\n",
        )
            .into_response(),
    )
}

async fn serve(
    State(s): State<Services>,
    Path(secret): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    req: axum::extract::Request,
) -> Response {
    let headers = req.headers();
    let client = app::ssr::client_ip(headers, req.extensions(), &s);
    if let Err(retry) = s.subscriptions.allow(client) {
        tracing::info!(client = ?client, "subscription request over the rate limit");
        return private(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry.0.to_string())],
                "too many requests\n",
            )
                .into_response(),
        );
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let choice = match subscription::choose(query.get("format").map(String::as_str), user_agent) {
        Ok(c) => c,
        Err(e) => {
            return private((StatusCode::BAD_REQUEST, format!("{e}\n")).into_response());
        }
    };
    let found = match s.subscriptions.find(&secret).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "subscription lookup failed");
            return private(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    };
    let Some(sub) = found else {
        return not_found();
    };
    let format = match choice {
        Choice::Document(f) => f,
        Choice::Page => {
            return private(
                (
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, sub.page_url.clone())],
                )
                    .into_response(),
            );
        }
    };
    let doc = subscription::render(&sub.profile, format);
    tracing::info!(
        user.id = sub.user.id,
        format = format.name(),
        servers = sub.profile.servers.len(),
        "subscription served"
    );
    let mut response = doc.body.into_response();
    let h = response.headers_mut();
    for (name, value) in subscription::headers(&sub.profile, format) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            h.insert(name, value);
        }
    }
    private(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_from_logged_paths() {
        assert_eq!(redacted_path("/sub/AbCdEf-_123"), "/sub/…");
        assert_eq!(redacted_path("/u/AbCdEf-_123"), "/u/…");
        assert_eq!(redacted_path("/users/7"), "/users/7");
        assert_eq!(redacted_path("/sub/"), "/sub/");
    }
}
