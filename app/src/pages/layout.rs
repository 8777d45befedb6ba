//! The signed-in layout: top bar with navigation, the administrator's name and "Sign out", the
//! live-update connection shared by all pages below it, and the page itself.

use leptos::prelude::*;
use leptos_router::components::{Outlet, A};

use crate::api::{whoami, Logout};
use crate::live::{self, LiveState};

/// Layout of every page that requires a session (the server redirects to /login before
/// rendering it without one; an ended session found later sends the browser there too).
#[component]
pub fn SignedIn() -> impl IntoView {
    let live = LiveState::new();
    provide_context(live);
    // Effects run only in the browser: one event stream for every page below this layout.
    Effect::new(move |_| live::connect(live));
    let admin = Resource::new(|| (), |_| whoami());
    let logout = ServerAction::<Logout>::new();
    // Without the bundle the browser follows #main and focuses it (tabindex -1); hydrated, the
    // router would take the click, so the link moves the focus itself.
    let main = NodeRef::<leptos::html::Main>::new();
    let skip = move |ev: leptos::ev::MouseEvent| {
        if let Some(main) = main.get() {
            ev.prevent_default();
            let _ = main.focus();
        }
    };
    view! {
        <a class="skip" href="#main" on:click=skip>"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/">"Arch"</a>
            <nav aria-label="Main">
                <A href="/" exact=true>"Dashboard"</A>
                <A href="/nodes">"Nodes"</A>
                <A href="/users">"Users"</A>
                <A href="/settings">"Settings"</A>
                <A href="/tokens">"API tokens"</A>
                <A href="/admins">"Administrators"</A>
                <A href="/audit">"Audit log"</A>
            </nav>
            <span class="live-status" data-testid="live-status" data-connected=move || live.connected.get().to_string()>
                {move || if live.connected.get() { "live" } else { "offline" }}
            </span>
            <Suspense fallback=|| ()>
                <span class="admin" data-testid="admin-name">
                    {move || admin.get().map(|r| match r {
                        Ok(a) => a.username,
                        Err(e) => {
                            if e.is_unauthorized() {
                                live::go_to_login();
                            }
                            String::new()
                        }
                    })}
                </span>
                <span class="role" data-testid="admin-role">
                    {move || admin.get().and_then(Result::ok).map(|a| a.role.to_string())}
                </span>
            </Suspense>
            <ActionForm action=logout attr:class="logout">
                <button type="submit" data-testid="sign-out">"Sign out"</button>
            </ActionForm>
        </header>
        <main id="main" tabindex="-1" node_ref=main>
            <Outlet/>
        </main>
    }
}
