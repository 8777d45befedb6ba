//! The Arch admin panel: Leptos pages, components and server functions.
//!
//! Built twice: with `ssr` inside `arch-manager` (renders every page on the server and runs the
//! server functions against `manager::Services`), and with `hydrate` into the wasm bundle
//! (`frontend`). The panel runs in Leptos's islands mode: the bundle holds only the pages'
//! `#[island]` components, hydrates each where the server rendered it and follows `/events` for
//! live updates; the rest of every page is server-rendered HTML (docs/panel.md). Server-only code is confined to [`ssr`] and to `#[server]` bodies, so the `manager`
//! crate (and its database) never reaches wasm. The browser talks to the server only through the
//! server functions in [`api`] and the SSE stream; the data it sees are the DTOs in [`model`],
//! and every failure is an [`AppError`].

pub mod api;
pub mod chart;
pub mod components;
pub mod error;
pub mod format;
pub mod live;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod validate;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path, SsrMode,
};

pub use error::AppError;

/// URL path of the stylesheet that `scripts/build-site.sh` puts next to the bundle: in the same
/// directory as the hydration scripts (`/pkg/{version}/arch.css`), so it changes with them.
pub fn stylesheet(options: &LeptosOptions) -> String {
    format!("/{}/{}.css", options.site_pkg_dir, options.output_name)
}

/// The browser bundle that holds the islands of the page at `path`. `scripts/build-site.sh` builds
/// one bundle, `arch-{name}.wasm`, per `bundle-{name}` feature of this crate, with only the islands
/// of that group of pages: a page loads its own group's code, never the whole panel's.
/// The groups: the pages without a session (sign-in, setup, an end user's profile; also the
/// not-found page, which has no islands), the dashboard with a node's page (both a usage chart and
/// live node state), the users list, a user's page, the nodes list with its add-node form, and the
/// owners' pages (settings, API tokens, administrators, audit log).
pub fn bundle_of(path: &str) -> &'static str {
    let mut parts = path.trim_matches('/').split('/');
    match (parts.next().unwrap_or_default(), parts.next()) {
        ("", None) => "dashboard",
        ("users", None) => "users",
        ("users", Some(_)) => "user",
        ("nodes", None) => "nodes",
        ("nodes", Some(_)) => "dashboard",
        ("settings" | "tokens" | "admins" | "audit", _) => "admin",
        _ => "public",
    }
}

/// The path of the page being rendered (server only; `/` elsewhere).
fn page_path() -> String {
    #[cfg(feature = "ssr")]
    if let Some(parts) = use_context::<axum::http::request::Parts>() {
        return parts.uri.path().to_owned();
    }
    "/".to_owned()
}

/// The HTML document around [`App`], rendered by the server for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let stylesheet = stylesheet(&options);
    // The hydration scripts load this page's bundle (`/pkg/…/arch-users.js` and `.wasm`).
    let mut bundle = options;
    bundle.output_name = format!("{}-{}", bundle.output_name, bundle_of(&page_path())).into();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="data:,"/>
                <link rel="stylesheet" href=stylesheet/>
                <HydrationScripts options=bundle islands=true/>
                {csp_header()}
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Sets the page's Content-Security-Policy header (server only). Scripts: the panel's own files
/// plus the inline hydration script, which carries this response's nonce (leptos_axum provides
/// one per render and `HydrationScripts` uses it); WebAssembly needs `'wasm-unsafe-eval'`.
fn csp_header() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        let nonce = leptos::nonce::use_nonce();
        let response = use_context::<leptos_axum::ResponseOptions>();
        if let (Some(nonce), Some(response)) = (nonce, response) {
            if let Ok(value) =
                axum::http::HeaderValue::from_str(&ssr::content_security_policy(&nonce))
            {
                response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
            }
        }
    }
}

/// The panel's routes (matched on the server; in the browser a link is a page load): sign-in and
/// setup outside, every other page inside the signed-in layout.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|page: String| if page.is_empty() { "Arch".to_owned() } else { format!("{page} · Arch") }/>
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=path!("/login") view=pages::login::LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/setup") view=pages::setup::SetupPage ssr=SsrMode::Async/>
                <Route path=path!("/u/:secret") view=pages::profile::ProfilePage ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=pages::layout::SignedIn ssr=SsrMode::Async>
                    <Route path=path!("") view=pages::dashboard::DashboardPage ssr=SsrMode::Async/>
                    <Route path=path!("nodes") view=pages::nodes::NodesPage ssr=SsrMode::Async/>
                    <Route path=path!("nodes/:id") view=pages::node::NodePage ssr=SsrMode::Async/>
                    <Route path=path!("users") view=pages::users::UsersPage ssr=SsrMode::Async/>
                    <Route path=path!("users/:id") view=pages::user::UserPage ssr=SsrMode::Async/>
                    <Route path=path!("settings") view=pages::settings::SettingsPage ssr=SsrMode::Async/>
                    <Route path=path!("tokens") view=pages::tokens::TokensPage ssr=SsrMode::Async/>
                    <Route path=path!("admins") view=pages::admins::AdminsPage ssr=SsrMode::Async/>
                    <Route path=path!("audit") view=pages::audit::AuditPage ssr=SsrMode::Async/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

#[cfg(test)]
mod tests {
    use super::bundle_of;

    #[test]
    fn every_page_loads_the_bundle_of_its_group() {
        for (path, bundle) in [
            ("/", "dashboard"),
            ("/users", "users"),
            ("/users/", "users"),
            ("/users/42", "user"),
            ("/nodes", "nodes"),
            ("/nodes/3", "dashboard"),
            ("/settings", "admin"),
            ("/tokens", "admin"),
            ("/admins", "admin"),
            ("/audit", "admin"),
            ("/u/secret", "public"),
            ("/login", "public"),
            ("/setup", "public"),
            ("/no/such/page", "public"),
            ("/u", "public"),
        ] {
            assert_eq!(bundle_of(path), bundle, "{path}");
        }
    }

    #[test]
    fn every_bundle_is_a_feature_that_build_site_builds() {
        let manifest = include_str!("../Cargo.toml");
        for path in [
            "/", "/users", "/users/1", "/nodes", "/nodes/1", "/audit", "/u/x", "/login",
        ] {
            let feature = format!("\nbundle-{} = ", bundle_of(path));
            assert!(
                manifest.contains(&feature),
                "app/Cargo.toml has no{feature}"
            );
        }
    }
}
