//! Sign-in page (`/login`). Works without wasm too: the form posts to the `login` server
//! function, which sets the session cookie and redirects.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{needs_setup, Login};
use crate::components::{FormErrors, FormMessage, SubmitButton, TextField};

/// The sign-in form, plus a hint when no administrator exists yet.
#[component]
pub fn LoginPage() -> impl IntoView {
    let setup_needed = Resource::new(|| (), |_| needs_setup());
    view! {
        <Title text="Sign in"/>
        <main id="main" class="narrow">
            <h1>"Sign in to Arch"</h1>
            <Suspense fallback=|| ()>
                {move || setup_needed.get().and_then(Result::ok).filter(|needed| *needed).map(|_| view! {
                    <p class="notice" data-testid="setup-hint">
                        "No administrator exists yet: open the setup URL printed by arch-manager, or run "
                        <code>"arch-manager admin create"</code> "."
                    </p>
                })}
            </Suspense>
            <LoginForm/>
        </main>
    }
}

/// The form: posts to the `login` server function (without the bundle too).
#[cfg_attr(feature = "bundle-public", island)]
#[cfg_attr(not(feature = "bundle-public"), component)]
fn LoginForm() -> impl IntoView {
    let action = ServerAction::<Login>::new();
    let errors = FormErrors::new();
    let (username, password) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    Effect::new(move |_| match action.value().get() {
        Some(Err(err)) => errors.show(&err),
        Some(Ok(())) => errors.clear(),
        None => {}
    });
    let pending = action.pending();
    view! {
            <ActionForm action=action attr:class="card">
                <FormMessage errors/>
                <TextField id="login-username" field="username" label="User name" value=username errors
                    required=true autocomplete="username"/>
                <TextField id="login-password" field="password" label="Password" value=password errors
                    kind="password" required=true autocomplete="current-password"/>
                <SubmitButton label="Sign in" working="Signing in…" pending primary=true/>
            </ActionForm>
    }
}
