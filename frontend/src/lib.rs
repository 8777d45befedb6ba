//! Hydrate entry point of the Arch admin panel, compiled to `wasm32-unknown-unknown` by
//! `scripts/build-site.sh`. The server renders every page; this crate only attaches the
//! reactive system to that HTML. It must stay tiny and must never depend on server crates
//! (`cargo tree -p frontend --target wasm32-unknown-unknown -i sea-orm` matches nothing).

use wasm_bindgen::prelude::wasm_bindgen;

/// Called by the hydration script that the server puts in every page's `<head>`.
/// Marks `<body data-hydrated="true">` when done (tests wait for it before interacting).
#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
