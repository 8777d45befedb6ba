//! Hydrate entry point of the Arch admin panel, compiled to `wasm32-unknown-unknown` by
//! `scripts/build-site.sh`. The server renders every page; the panel runs in Leptos's islands
//! mode, so this bundle holds only the interactive parts of the pages (the `#[island]`
//! components) and hydrates each where the server put it. It must stay tiny and must never
//! depend on server crates (`cargo tree -p frontend --target wasm32-unknown-unknown -i sea-orm`
//! matches nothing).

use wasm_bindgen::prelude::wasm_bindgen;

// The islands' hydrate functions are wasm exports defined in `app`; the crate must be linked in
// although nothing here names it.
extern crate app;

/// Called by the hydration script that the server puts in every page's `<head>`, before it
/// hydrates the page's islands one by one (each in a promise continuation). Marks
/// `<body data-hydrated="true">` once they all are: a zero-delay timer runs after those
/// continuations (tests wait for the mark before interacting).
#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // A server function that redirects (sign-in, setup, sign-out) sends the browser there: a
    // full page load, as without the bundle (there is no client-side router).
    let _ = leptos::server_fn::redirect::set_redirect_hook(|to: &str| {
        let _ = leptos::prelude::window().location().assign(to);
    });
    leptos::mount::hydrate_islands();
    leptos::prelude::set_timeout(
        || {
            if let Some(body) = leptos::prelude::document().body() {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        },
        std::time::Duration::ZERO,
    );
}
