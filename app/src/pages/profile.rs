//! The end user's profile page (`/u/{secret}`), outside the signed-in layout: whether access is
//! on (and why not), usage against the quota, the subscription URL with its QR code and one-tap
//! import links, and each server's `ss://` link with a copy button and QR code. Complete without
//! JavaScript (links are selectable read-only fields, QR codes are server-rendered SVG).
//!
//! The secret is in the URL, so the page is `noindex` and sends `Referrer-Policy: no-referrer`.
//! An unknown secret renders the same 404 page as any unknown path. Lookups go through the same
//! service as `/sub/{secret}`, rate limited per source address.
//! Test ids: `profile`, `profile-status`, `profile-usage`, `profile-expiry`, `profile-url`, `profile-qr`,
//! `import-{app}`, `server-{n}`, `server-{n}-url`, `server-{n}-qr`, `server-{n}-copy`.

use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::components::ErrorBox;
use crate::error::AppError;
use crate::pages::user::{copy_to_clipboard, select_target};
use crate::pages::NotFound;

/// One server on the profile page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileServer {
    /// `Arch · relay`, `node-2 · remote`.
    pub name: String,
    /// The `ss://` link.
    pub link: String,
    pub qr_svg: Option<String>,
}

/// What the profile page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileView {
    pub name: String,
    /// `None` when access is on; else why not, in words.
    pub disabled_because: Option<String>,
    pub used_bytes: u64,
    /// `None` = unlimited.
    pub quota_bytes: Option<u64>,
    /// When access ends (Unix ms); `None` = never, or not started yet (see `access_days`).
    pub expire_at_ms: Option<i64>,
    /// Days of access that start with the first use, when that clock has not started.
    pub access_days: Option<i64>,
    pub url: String,
    pub url_qr_svg: Option<String>,
    /// (app name, import link).
    pub imports: Vec<(String, String)>,
    pub servers: Vec<ProfileServer>,
}

/// The profile of the subscription secret `secret`; `None` when no user has it.
#[server(endpoint = "profile", input = crate::api::Json, output = crate::api::Json)]
pub async fn load_profile(secret: String) -> Result<Option<ProfileView>, AppError> {
    use crate::ssr;
    let services = ssr::services()?;
    let headers = ssr::request_headers().await?;
    let peer = leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .await
        .ok();
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let client_ip = peer.map(|c| services.auth.client_ip(c.0.ip(), forwarded));
    if services.subscriptions.allow(client_ip).is_err() {
        return Err(AppError::RateLimited);
    }
    let Some(sub) = services
        .subscriptions
        .find(&secret)
        .await
        .map_err(ssr::service_error)?
    else {
        return Ok(None);
    };
    let imports = subscription::import_links(&sub.url, &sub.profile.title);
    Ok(Some(ProfileView {
        name: sub.user.name.clone(),
        disabled_because: sub.disabled_because().map(str::to_owned),
        used_bytes: sub.profile.usage.used,
        quota_bytes: sub.profile.usage.quota,
        expire_at_ms: sub.user.expire_at,
        access_days: sub
            .user
            .expire_after_first_use
            .filter(|_| sub.user.expire_at.is_none())
            .map(|ms| ms / rules::input::DAY_MS),
        url_qr_svg: manager::links::qr_svg(&sub.url),
        url: sub.url,
        imports: vec![
            ("sing-box".to_owned(), imports.sing_box),
            ("Clash".to_owned(), imports.clash),
            ("Shadowrocket".to_owned(), imports.shadowrocket),
            ("Hiddify".to_owned(), imports.hiddify),
        ],
        servers: sub
            .profile
            .servers
            .iter()
            .map(|s| {
                let link = s.link();
                ProfileServer {
                    name: s.name.clone(),
                    qr_svg: manager::links::qr_svg(&link),
                    link,
                }
            })
            .collect(),
    }))
}

/// Sets the page's private headers (server only): no referrer leaves the page.
fn private_headers() {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.insert_header(
            axum::http::header::REFERRER_POLICY,
            axum::http::HeaderValue::from_static("no-referrer"),
        );
        response.insert_header(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
}

/// Bytes in decimal units with one decimal: "1.5 GB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The profile page.
#[component]
pub fn ProfilePage() -> impl IntoView {
    private_headers();
    let params = use_params_map();
    let secret = move || params.read().get("secret").unwrap_or_default();
    let profile = Resource::new(secret, load_profile);
    view! {
        <Meta name="robots" content="noindex"/>
        <Meta name="referrer" content="no-referrer"/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || profile.get().map(|r| match r {
                Ok(Some(p)) => view! { <Profile profile=p/> }.into_any(),
                Ok(None) => view! { <NotFound/> }.into_any(),
                Err(error) => view! {
                    <main id="main" class="narrow"><h1>"Your subscription"</h1><ErrorBox error/></main>
                }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn Profile(profile: ProfileView) -> impl IntoView {
    let status = match &profile.disabled_because {
        None => "Active".to_owned(),
        Some(why) => format!("Disabled: {why}"),
    };
    let usage = match profile.quota_bytes {
        Some(q) => format!("{} of {}", human_bytes(profile.used_bytes), human_bytes(q)),
        None => format!("{} used (unlimited)", human_bytes(profile.used_bytes)),
    };
    let meter = profile.quota_bytes.map(|q| {
        view! {
            <meter id="profile-meter" min="0" max=q.to_string() value=profile.used_bytes.min(q).to_string()
                aria-describedby="profile-usage-text"></meter>
        }
    });
    let expiry = match (profile.expire_at_ms, profile.access_days) {
        (Some(at), _) => Some(
            crate::format::iso8601(at)
                .replacen('T', " ", 1)
                .replace('Z', " UTC"),
        ),
        (None, Some(days)) => Some(format!("{days} days from your first use")),
        (None, None) => None,
    };
    let expiry = expiry.map(|text| {
        view! {
            <dt>"Access until"</dt>
            <dd data-testid="profile-expiry">{text}</dd>
        }
    });
    let url = profile.url.clone();
    view! {
        <Title text="Your subscription"/>
        <main id="main" class="profile" data-testid="profile">
            <h1>{format!("Subscription of {}", profile.name)}</h1>
            <dl class="facts">
                <dt>"Status"</dt>
                <dd data-testid="profile-status" class=if profile.disabled_because.is_some() { "bad" } else { "ok-text" }>
                    {status}
                </dd>
                <dt>"Usage"</dt>
                <dd data-testid="profile-usage">
                    {meter}
                    <span id="profile-usage-text">{usage}</span>
                </dd>
                {expiry}
            </dl>
            <section class="card" aria-labelledby="profile-url-title">
                <h2 id="profile-url-title">"Subscription URL"</h2>
                <p class="hint">
                    "Add this URL to your client app: it keeps your servers up to date. "
                    "Keep it private: anyone with it can use your access."
                </p>
                <CopyField id="profile-url".to_owned() label="Subscription URL".to_owned() value=url/>
                {profile.url_qr_svg.map(|svg| view! {
                    <div class="qr" role="img" aria-label="QR code of the subscription URL"
                        data-testid="profile-qr" inner_html=svg></div>
                })}
                <h3>"Open in an app"</h3>
                <ul class="imports">
                    {profile.imports.into_iter().map(|(app, href)| {
                        let id = format!("import-{}", app.to_ascii_lowercase().replace(' ', "-"));
                        view! { <li><a href=href data-testid=id rel="noreferrer">{format!("Import into {app}")}</a></li> }
                    }).collect_view()}
                </ul>
            </section>
            <h2>"Servers"</h2>
            {profile.servers.is_empty().then(|| view! {
                <p class="empty" data-testid="profile-no-servers">"No server is available to you right now."</p>
            })}
            <div class="links">
                {profile.servers.into_iter().enumerate().map(|(i, s)| {
                    let key = format!("server-{}", i + 1);
                    let qr_label = format!("QR code of {}", s.name);
                    view! {
                        <section class="card link-card" data-testid=key.clone() aria-label=s.name.clone()>
                            <h3>{s.name.clone()}</h3>
                            <CopyField id=format!("{key}-url") label=format!("{} link", s.name) value=s.link/>
                            {s.qr_svg.map(|svg| view! {
                                <div class="qr" role="img" aria-label=qr_label data-testid=format!("{key}-qr") inner_html=svg></div>
                            })}
                        </section>
                    }
                }).collect_view()}
            </div>
        </main>
    }
}

/// A read-only, selectable field with a copy button, the page's only island (the button needs
/// the bundle; without it the text is selected on focus and copied by hand).
#[cfg_attr(feature = "bundle-public", island)]
#[cfg_attr(not(feature = "bundle-public"), component)]
fn CopyField(id: String, label: String, value: String) -> impl IntoView {
    let copied = RwSignal::new(None::<&'static str>);
    let text = value.clone();
    let copy = move |_| {
        let text = text.clone();
        copied.set(None);
        leptos::task::spawn_local(async move {
            copied.set(Some(match copy_to_clipboard(text).await {
                Ok(()) => "Copied.",
                Err(why) => why,
            }));
        });
    };
    let base = id.trim_end_matches("-url").to_owned();
    view! {
        <label for=id.clone() class="visually-hidden">{label}</label>
        <input id=id.clone() type="text" readonly value=value data-testid=id.clone()
            class="link-url" on:focus=|ev| select_target(&ev)/>
        <div class="form-actions">
            <button type="button" data-testid=format!("{base}-copy") on:click=copy>"Copy"</button>
            <span class="ok-text" aria-live="polite" data-testid=format!("{base}-copied")>{move || copied.get()}</span>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_read_like_the_quota() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
        assert_eq!(human_bytes(10_000_000_000), "10.0 GB");
        assert_eq!(human_bytes(2_500_000), "2.5 MB");
    }
}
