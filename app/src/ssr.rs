//! Server-only glue between the panel and the `manager` crate (compiled with `ssr` only).
//!
//! Owns: the session cookie (name, parsing, `Set-Cookie` values), the rule for "this request
//! came over HTTPS" ([`is_https`], also used for the panel's HSTS), the "who is signed in" check
//! used by server functions, pages and the server's `/events` route, the mapping from
//! `manager::ServiceError` to [`AppError`], and conversions from manager types to the panel's
//! DTOs. It must not hold state of its own: everything comes from `manager::Services` in context.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{header, request::Parts, Extensions, HeaderMap, HeaderValue};
use daemon::http::Transport;
use leptos::prelude::*;
use manager::{Admin, ServiceError, Services};

use crate::error::AppError;
use crate::model::{AdminView, LinkView, NodeCheck, NodeView, SettingsView, TokenView, UserView};

/// Name of the session cookie set by sign-in and first-run setup.
pub const SESSION_COOKIE: &str = "arch_session";

/// The session token carried by the request's `Cookie` header(s), if any.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// The administrator signed in with the request's session cookie: `Ok(None)` without a cookie
/// or when its session ended. An error means the sessions could not be read (the database
/// failed); callers answer 500 then, never "sign in again". Used by server functions, the page
/// guard and the `/events` route.
pub async fn admin_from_headers(
    headers: &HeaderMap,
    services: &Services,
) -> Result<Option<Admin>, ServiceError> {
    match session_token(headers) {
        Some(token) => services.auth.admin_for_session(token).await,
        None => Ok(None),
    }
}

/// The client address of a request: its TCP peer (`ConnectInfo`), or what `X-Forwarded-For`
/// says when that peer is a `--trusted-proxy`. `None` when the peer is unknown (a request built
/// in a test). Used for sign-in limits, the audit log and the subscription rate limit.
pub fn client_ip(
    headers: &HeaderMap,
    extensions: &Extensions,
    services: &Services,
) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?;
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    Some(services.auth.client_ip(peer.0.ip(), forwarded))
}

/// The actor of a panel request: the administrator of its session cookie with their role, or
/// `anonymous`. An error means the sessions could not be read.
pub async fn actor_of(
    headers: &HeaderMap,
    extensions: &Extensions,
    services: &Services,
) -> Result<manager::Actor, ServiceError> {
    let address = client_ip(headers, extensions, services);
    Ok(match admin_from_headers(headers, services).await? {
        Some(a) => manager::Actor::admin(a.id, &a.username, a.role, address),
        None => manager::Actor::anonymous(address),
    })
}

/// [`client_ip`] of the current server-function call.
pub fn request_client_ip(services: &Services) -> Result<Option<IpAddr>, AppError> {
    let parts = use_context::<Parts>().ok_or_else(|| {
        tracing::error!("request parts missing from the Leptos context");
        AppError::Internal
    })?;
    Ok(client_ip(&parts.headers, &parts.extensions, services))
}

/// Whether a request reached the manager over HTTPS: the one rule behind the session cookie's
/// `Secure` flag and the panel's HSTS header. True when it arrived on the manager's own TLS
/// listener (the [`Transport`] extension `daemon::http::serve` puts on every request is `Tls`),
/// or when its peer (`ConnectInfo`) is a `--trusted-proxy` and says `X-Forwarded-Proto: https`
/// (its last value: the one the nearest proxy appended). The header from any other peer, and
/// `Origin`, count for nothing: a client can send whatever it likes.
pub fn is_https(headers: &HeaderMap, extensions: &Extensions, services: &Services) -> bool {
    https_rule(headers, extensions, |peer| {
        services.auth.is_trusted_proxy(peer)
    })
}

/// [`is_https`] for the current server-function call or page render.
pub fn request_is_https(services: &Services) -> Result<bool, AppError> {
    let parts = use_context::<Parts>().ok_or_else(|| {
        tracing::error!("request parts missing from the Leptos context");
        AppError::Internal
    })?;
    Ok(is_https(&parts.headers, &parts.extensions, services))
}

/// [`is_https`] with the trusted-proxy check given as a function.
fn https_rule(
    headers: &HeaderMap,
    extensions: &Extensions,
    is_trusted_proxy: impl Fn(IpAddr) -> bool,
) -> bool {
    if extensions.get::<Transport>() == Some(&Transport::Tls) {
        return true;
    }
    let forwarded_https = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    forwarded_https
        && extensions
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|peer| is_trusted_proxy(peer.0.ip()))
}

/// The Content-Security-Policy of a panel page whose inline scripts carry `nonce`.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// `Set-Cookie` value for a new session that expires at `expires_at` (unix ms).
pub fn session_cookie(token: &str, expires_at_ms: i64, now_ms: i64, secure: bool) -> String {
    let max_age = ((expires_at_ms - now_ms) / 1000).max(0);
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie(secure: bool) -> String {
    session_cookie("", 0, 0, secure)
}

/// The services provided to every server function and page render by `server/src/panel.rs`.
pub fn services() -> Result<Services, AppError> {
    use_context::<Services>().ok_or_else(|| {
        tracing::error!("manager::Services missing from the Leptos context");
        AppError::Internal
    })
}

/// The request headers of the current server-function call or page render.
pub async fn request_headers() -> Result<HeaderMap, AppError> {
    leptos_axum::extract::<HeaderMap>()
        .await
        .map_err(|e| AppError::Request(e.to_string()))
}

/// Services plus the signed-in administrator; [`AppError::Unauthorized`] without a valid
/// session, [`AppError::Internal`] (cause logged) when the session could not be read.
pub async fn signed_in() -> Result<(Services, Admin), AppError> {
    let services = services()?;
    let headers = request_headers().await?;
    let admin = admin_from_headers(&headers, &services)
        .await
        .map_err(service_error)?
        .ok_or(AppError::Unauthorized)?;
    Ok((services, admin))
}

/// Adds a `Set-Cookie` header to the response of the current server function.
pub fn set_cookie(value: &str) -> Result<(), AppError> {
    let value = HeaderValue::from_str(value).map_err(|_| AppError::Internal)?;
    let response = use_context::<leptos_axum::ResponseOptions>().ok_or(AppError::Internal)?;
    response.append_header(header::SET_COOKIE, value);
    Ok(())
}

/// Maps a service error to the panel's error. Details of internal failures are logged here,
/// once, and not sent to the browser.
pub fn service_error(err: ServiceError) -> AppError {
    use crate::error::sentence;
    match err {
        ServiceError::Invalid { field, message } => AppError::Invalid {
            field,
            message: sentence(&message),
        },
        ServiceError::Conflict { field, message } => AppError::Conflict {
            field,
            message: sentence(&message),
        },
        ServiceError::NotFound(what) => AppError::NotFound(what),
        ServiceError::Unauthorized => AppError::Unauthorized,
        ServiceError::Forbidden(why) => AppError::Forbidden(why),
        ServiceError::RateLimited => AppError::RateLimited,
        ServiceError::Unreachable(cause) => {
            tracing::info!(error = %cause, "node connection check failed");
            AppError::Unreachable(cause.summary())
        }
        other => {
            tracing::error!(error = %other, "panel request failed");
            AppError::Internal
        }
    }
}

/// Like [`service_error`], but an `Unauthorized` from the service means the *credentials in the
/// form* were wrong (sign-in, setup token, node token), not that the session ended.
pub fn credential_error(field: &str, message: &str) -> impl FnOnce(ServiceError) -> AppError {
    let (field, message) = (field.to_owned(), message.to_owned());
    move |err| match err {
        ServiceError::Unauthorized => AppError::Invalid { field, message },
        other => service_error(other),
    }
}

/// Manager admin → panel DTO.
pub fn admin_view(admin: &Admin) -> AdminView {
    AdminView {
        id: admin.id,
        username: admin.username.clone(),
        role: admin.role,
        created_at: admin.created_at,
    }
}

/// Manager node → panel DTO (without the node's token).
pub fn node_view(node: manager::Node) -> NodeView {
    NodeView {
        drift: node.has_drift(),
        desired_version: node.desired_version.clone(),
        id: node.id,
        name: node.name,
        host: node.host,
        http_port: u16::try_from(node.http_port).unwrap_or_default(),
        usage_bytes: node.usage_bytes,
        push_status: node.push_status.as_str().to_owned(),
        pull_status: node.pull_status.as_str().to_owned(),
        pushed_at: node.pushed_at,
        pulled_at: node.pulled_at,
        applied_version: node.applied_version,
        last_error: node.last_error,
        tls_fingerprint: node.tls_fingerprint,
        presented_fingerprint: node.presented_fingerprint,
        insecure_http: node.insecure_http,
        refused_calls: node.refused_calls,
        token_rotation_pending: node.pending_token.is_some(),
        usage_multiplier: multiplier_text(node.usage_multiplier_permille),
    }
}

/// A multiplier stored in thousandths, as typed: `1500` → `1.5`.
fn multiplier_text(permille: i32) -> String {
    let (whole, frac) = (permille / 1000, permille % 1000);
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:03}")
            .trim_end_matches('0')
            .to_owned()
    }
}

/// A usage history as a chart's series: the last [`UsageStep::buckets`] buckets up to and
/// including the one holding `now`, every bucket present (0 where nothing was counted).
pub fn usage_series(
    step: crate::model::UsageStep,
    points: &[manager::history::Point],
    now: i64,
    zone: &str,
) -> crate::model::UsageSeries {
    let size = history_step(step).ms();
    let last = history_step(step).bucket(now);
    let first = last - (step.buckets() - 1) * size;
    let buckets = (0..step.buckets()).map(|i| {
        let at = first + i * size;
        let bytes = points.iter().filter(|p| p.at == at).map(|p| p.bytes).sum();
        (at, bytes)
    });
    labelled_series(step, buckets, zone)
}

/// A chart's series from its buckets (start, bytes), each labelled for people: an hour as the
/// wall-clock minute it began in `zone` (the settings' time zone; an unknown name reads as
/// UTC), a day as its UTC date (the manager keeps days as UTC days).
pub fn labelled_series(
    step: crate::model::UsageStep,
    buckets: impl Iterator<Item = (i64, i64)>,
    zone: &str,
) -> crate::model::UsageSeries {
    use crate::model::{UsagePoint, UsageSeries, UsageStep};
    let zone = match step {
        UsageStep::Hour if manager::resets::zone(zone).is_ok() => zone,
        _ => "UTC",
    };
    let tz = manager::resets::zone_or_utc(zone);
    let points = buckets
        .map(|(at, bytes)| {
            let minute = manager::resets::local_minute(at, &tz);
            let label = match step {
                UsageStep::Hour => minute,
                UsageStep::Day => minute.get(..10).unwrap_or(&minute).to_owned(),
            };
            UsagePoint { at, bytes, label }
        })
        .collect();
    UsageSeries {
        step,
        zone: zone.to_owned(),
        points,
    }
}

/// The history bucket size of a chart step.
pub fn history_step(step: crate::model::UsageStep) -> manager::history::Step {
    match step {
        crate::model::UsageStep::Hour => manager::history::Step::Hour,
        crate::model::UsageStep::Day => manager::history::Step::Day,
    }
}

/// Manager API token → panel DTO.
pub fn token_view(t: manager::ApiToken) -> TokenView {
    TokenView {
        id: t.id,
        name: t.name,
        role: t.role,
        created_at: t.created_at,
        last_used_at: t.last_used_at,
    }
}

/// What a connection check learned, in one line.
pub fn node_check(info: manager::NodeInfo) -> NodeCheck {
    let config = info.config_version.as_deref().unwrap_or("none yet");
    NodeCheck {
        summary: format!(
            "{} {} is reachable (up {} s, config version {config})",
            info.name, info.version, info.uptime_seconds
        ),
        fingerprint: None,
    }
}

/// Manager user → panel DTO.
pub fn user_view(user: manager::User) -> UserView {
    UserView {
        id: user.id,
        name: user.name,
        enabled: user.enabled,
        disabled_reason: user.disabled_reason,
        quota_bytes: user.quota_bytes,
        usage_bytes: user.usage_bytes,
        created_at: user.created_at,
        expire_at: user.expire_at,
        expire_after_first_use: user.expire_after_first_use,
        first_used_at: user.first_used_at,
        reset_strategy: user.reset_strategy,
        reset_day: user.reset_day,
        next_reset_at: user.next_reset_at,
    }
}

/// A user's link → panel DTO with a label and its QR code.
pub fn link_view(link: manager::links::Link, nodes: &[manager::Node]) -> LinkView {
    use rules::Mode;
    let label = match (link.mode, link.node_id) {
        (Mode::Direct, _) => "Direct (through the manager)".to_owned(),
        (Mode::Relay, _) => "Relay (manager → a node)".to_owned(),
        (Mode::Reverse, _) => "Reverse (manager → a node's tunnel)".to_owned(),
        (Mode::Remote, Some(id)) => match nodes.iter().find(|n| n.id == id) {
            Some(n) => format!("Remote via node {id} ({})", n.host),
            None => format!("Remote via node {id}"),
        },
        (Mode::Remote, None) => "Remote".to_owned(),
    };
    LinkView {
        qr_svg: manager::links::qr_svg(&link.url),
        mode: link.mode,
        node_id: link.node_id,
        label,
        url: link.url,
    }
}

/// Manager settings → panel DTO.
pub fn settings_view(s: manager::Settings) -> SettingsView {
    SettingsView {
        host: s.host,
        ss_direct_port: s.ss_direct_port,
        ss_relay_port: s.ss_relay_port,
        ss_reverse_port: s.ss_reverse_port,
        ss_remote_port: s.ss_remote_port,
        proxy_url: s.proxy_url,
        traffic_ratio: s.traffic_ratio,
        allowed_private_networks: s.allowed_private_networks,
        subscription_url_base: s.subscription_url_base,
        time_zone: s.time_zone,
    }
}

/// Manager dashboard → panel DTO.
pub fn dashboard_view(d: manager::Dashboard) -> crate::model::DashboardView {
    use crate::model::{DashboardView, PushView, UsageStep};
    let by = d.users.disabled_by;
    DashboardView {
        users_total: d.users.total,
        users_active: d.users.active,
        users_disabled: d.users.disabled,
        disabled_by: rules::DisableReason::ALL
            .into_iter()
            .map(|r| (r, by.get(r)))
            .collect(),
        traffic_today: d.traffic.today_bytes,
        traffic_month: d.traffic.month_bytes,
        time_zone: d.traffic.time_zone.clone(),
        nodes_total: d.nodes.total,
        nodes_healthy: d.nodes.healthy,
        nodes_unhealthy: d.nodes.unhealthy,
        nodes_drift: d.nodes.drift,
        hourly: labelled_series(
            UsageStep::Hour,
            d.hourly.iter().map(|p| (p.at, p.bytes)),
            &d.traffic.time_zone,
        ),
        pushes: d
            .pushes
            .into_iter()
            .map(|p| PushView {
                drift: p.drift,
                node_id: p.node_id,
                name: p.name,
                pushed_at: p.pushed_at,
                push_status: p.push_status.as_str().to_owned(),
                applied_version: p.applied_version,
                last_error: p.last_error,
            })
            .collect(),
    }
}

/// Manager audit entry → panel DTO: each changed field with its values as JSON text.
pub fn audit_view(e: manager::AuditEntry) -> crate::model::AuditView {
    use crate::model::ChangeView;
    let changes = match e.changes {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(field, value)| match value {
                serde_json::Value::Array(pair) if pair.len() == 2 => ChangeView {
                    field,
                    before: json_text(&pair[0]),
                    after: json_text(&pair[1]),
                },
                other => ChangeView {
                    field,
                    before: String::new(),
                    after: json_text(&other),
                },
            })
            .collect(),
        _ => Vec::new(),
    };
    crate::model::AuditView {
        id: e.id,
        at: e.at,
        actor_kind: e.actor_kind,
        actor_name: e.actor_name,
        address: e.address,
        action: e.action,
        object_kind: e.object_kind,
        object_id: e.object_id,
        object_name: e.object_name,
        changes,
        outcome: e.outcome,
    }
}

/// A JSON value as the audit page shows it: strings without quotes, `null` as empty.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_read_as_typed() {
        assert_eq!(multiplier_text(1000), "1");
        assert_eq!(multiplier_text(1500), "1.5");
        assert_eq!(multiplier_text(125), "0.125");
        assert_eq!(multiplier_text(0), "0");
        assert_eq!(multiplier_text(100_000), "100");
        assert_eq!(multiplier_text(2050), "2.05");
    }

    #[test]
    fn a_series_has_every_bucket_up_to_now() {
        use crate::model::{UsagePoint, UsageStep};
        use manager::history::{Point, HOUR_MS};
        let now = 100 * HOUR_MS + 1234;
        let stored = [
            Point {
                at: 77 * HOUR_MS,
                bytes: 9,
            },
            Point {
                at: 80 * HOUR_MS,
                bytes: 5,
            },
            Point {
                at: 100 * HOUR_MS,
                bytes: 7,
            },
        ];
        let series = usage_series(UsageStep::Hour, &stored, now, "Asia/Kolkata");
        assert_eq!(series.points.len(), 24);
        assert_eq!(series.zone, "Asia/Kolkata");
        let point = |at: i64, bytes: i64, label: &str| UsagePoint {
            at,
            bytes,
            label: label.to_owned(),
        };
        // Hours labelled at their start in the zone (UTC+5:30).
        assert_eq!(series.points[0], point(77 * HOUR_MS, 9, "1970-01-04 10:30"));
        assert_eq!(series.points[3], point(80 * HOUR_MS, 5, "1970-01-04 13:30"));
        assert_eq!(
            series.points[23],
            point(100 * HOUR_MS, 7, "1970-01-05 09:30")
        );
        assert_eq!(series.points.iter().map(|p| p.bytes).sum::<i64>(), 21);
        // Days are UTC days whatever the zone; an unknown zone reads as UTC.
        let days = usage_series(UsageStep::Day, &[], now, "Asia/Kolkata");
        assert_eq!(
            (days.zone.as_str(), days.points[29].label.as_str()),
            ("UTC", "1970-01-05")
        );
        let unknown = usage_series(UsageStep::Hour, &stored, now, "Mars/Olympus");
        assert_eq!(unknown.zone, "UTC");
        assert_eq!(unknown.points[0].label, "1970-01-04 05:00");
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; arch_session=tok; b=2"),
        );
        assert_eq!(session_token(&headers), Some("tok"));
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::COOKIE, HeaderValue::from_static("arch_session=x2"));
        assert_eq!(session_token(&headers), Some("x2"));
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("arch_session="));
        assert_eq!(session_token(&headers), None);
        assert_eq!(session_token(&HeaderMap::new()), None);
    }

    #[test]
    fn cookie_attributes() {
        assert_eq!(
            session_cookie("t", 61_000, 1_000, false),
            "arch_session=t; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        assert!(session_cookie("t", 61_000, 1_000, true).ends_with("; Secure"));
        assert!(clear_session_cookie(false).contains("Max-Age=0"));
    }

    /// A request's headers and extensions as `daemon::http::serve` delivers them.
    fn request(
        transport: Transport,
        peer: &str,
        headers: &[(&'static str, &'static str)],
    ) -> (HeaderMap, Extensions) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_static(v));
        }
        let mut ext = Extensions::new();
        ext.insert(transport);
        ext.insert(ConnectInfo(
            format!("{peer}:40000").parse::<SocketAddr>().expect("addr"),
        ));
        (map, ext)
    }

    fn https(transport: Transport, peer: &str, headers: &[(&'static str, &'static str)]) -> bool {
        let (h, e) = request(transport, peer, headers);
        let trusted: IpAddr = "10.0.0.1".parse().expect("ip");
        https_rule(&h, &e, |p| p == trusted)
    }

    #[test]
    fn https_is_tls_or_a_trusted_proxys_word() {
        // Directly over TLS, whatever the headers say.
        assert!(https(Transport::Tls, "198.51.100.7", &[]));
        assert!(https(
            Transport::Tls,
            "198.51.100.7",
            &[("x-forwarded-proto", "http")]
        ));
        // Plain HTTP.
        assert!(!https(Transport::Plain, "10.0.0.1", &[]));
        // A trusted proxy that terminated TLS.
        assert!(https(
            Transport::Plain,
            "10.0.0.1",
            &[("x-forwarded-proto", "https")]
        ));
        assert!(https(
            Transport::Plain,
            "10.0.0.1",
            &[("x-forwarded-proto", "HTTPS")]
        ));
        // Its own value is the last one; what the client sent before it does not count.
        assert!(!https(
            Transport::Plain,
            "10.0.0.1",
            &[("x-forwarded-proto", "https, http")]
        ));
        assert!(https(
            Transport::Plain,
            "10.0.0.1",
            &[("x-forwarded-proto", "http, https")]
        ));
        assert!(!https(
            Transport::Plain,
            "10.0.0.1",
            &[("x-forwarded-proto", "http")]
        ));
        // The same header from anyone else, or an https Origin, is not believed.
        assert!(!https(
            Transport::Plain,
            "198.51.100.7",
            &[("x-forwarded-proto", "https")]
        ));
        assert!(!https(
            Transport::Plain,
            "198.51.100.7",
            &[("origin", "https://panel.example")]
        ));
        assert!(!https(
            Transport::Plain,
            "10.0.0.1",
            &[("origin", "https://panel.example")]
        ));
        // Without the extensions (not served by daemon::http) nothing is believed.
        let (h, _) = request(
            Transport::Plain,
            "10.0.0.1",
            &[("x-forwarded-proto", "https")],
        );
        assert!(!https_rule(&h, &Extensions::new(), |_| true));
    }

    #[test]
    fn service_errors_keep_their_field() {
        let err = service_error(ServiceError::Invalid {
            field: "quota_bytes".into(),
            message: "must be 0 (unlimited) or more".into(),
        });
        assert_eq!(
            err,
            AppError::invalid("quota_bytes", "Must be 0 (unlimited) or more.")
        );
        let err = service_error(ServiceError::Conflict {
            field: "name".into(),
            message: "the name is taken.".into(),
        });
        assert_eq!(err.field(), Some("name"));
        assert_eq!(err.to_string(), "The name is taken.");
        assert_eq!(
            service_error(ServiceError::Internal("secret detail".into())),
            AppError::Internal
        );
        let err = credential_error("password", "wrong")(ServiceError::Unauthorized);
        assert_eq!(err.field(), Some("password"));
    }
}
