//! The panel's pages. `layout` wraps every page that needs a signed-in administrator.

pub mod add_node;
pub mod admins;
pub mod audit;
pub mod dashboard;
pub mod layout;
pub mod login;
pub mod node;
pub mod nodes;
pub mod profile;
pub mod settings;
pub mod setup;
pub mod tokens;
pub mod user;
pub mod users;

use leptos::prelude::*;
use leptos_meta::Title;

/// Shown for paths the router does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <main id="main" class="narrow">
            <h1>"Page not found"</h1>
            <p><a href="/nodes">"Go to the nodes page"</a></p>
        </main>
    }
}
