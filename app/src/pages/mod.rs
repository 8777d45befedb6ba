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
use leptos_router::hooks::{use_params_map, use_query_map};

/// The page URL's query parameters, read once on the server into what `read` builds from them
/// (`get(name)`: the parameter, empty when missing). Islands get the result as props.
pub(crate) fn url_query<T>(read: impl FnOnce(&dyn Fn(&str) -> String) -> T) -> T {
    use_query_map().with_untracked(|p| read(&|name| p.get(name).unwrap_or_default()))
}

/// The route's `:id`, `None` when it is not a number.
pub(crate) fn id_param() -> Option<i64> {
    use_params_map().with_untracked(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()))
}

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
