//! The signed-in layout: top bar with navigation, the administrator's name, the live-update
//! state and "Sign out", and the page itself. Rendered on the server; the live-update state is an
//! island.

use leptos::prelude::*;
use leptos_router::components::{Outlet, A};

use crate::api::{whoami, Logout};
use crate::live::{self, LiveState};
use server_fn::ServerFn as _;

/// Layout of every page that requires a session (the server redirects to /login before
/// rendering it without one; an ended session found later sends the browser there too).
#[component]
pub fn SignedIn() -> impl IntoView {
    // One state for every island of this render (on the server it is never fed).
    provide_context(LiveState::new());
    let admin = Resource::new(|| (), |_| whoami());
    view! {
        // The browser follows #main and focuses it (tabindex -1).
        <a class="skip" href="#main">"Skip to content"</a>
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
            <LiveStatus/>
            <Suspense fallback=|| ()>
                <span class="admin" data-testid="admin-name">
                    {move || admin.get().and_then(Result::ok).map(|a| a.username)}
                </span>
                <span class="role" data-testid="admin-role">
                    {move || admin.get().and_then(Result::ok).map(|a| a.role.to_string())}
                </span>
            </Suspense>
            <SignOut/>
        </header>
        <main id="main" tabindex="-1">
            <Outlet/>
        </main>
    }
}

/// Whether the page's live updates are connected.
#[cfg_attr(feature = "signed-in", island)]
#[cfg_attr(not(feature = "signed-in"), component)]
fn LiveStatus() -> impl IntoView {
    let live = live::use_live();
    view! {
        <span class="live-status" data-testid="live-status" data-connected=move || live.connected.get().to_string()>
            {move || if live.connected.get() { "live" } else { "offline" }}
        </span>
    }
}

/// "Sign out": a plain form posting to the `logout` server function, which ends the session and
/// answers with a redirect to /login; no script is involved.
#[component]
fn SignOut() -> impl IntoView {
    view! {
        <form method="post" action=Logout::url() class="logout">
            <button type="submit" data-testid="sign-out">"Sign out"</button>
        </form>
    }
}
