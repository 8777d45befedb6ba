//! First-run setup (`/setup?token=…`): creates the first administrator with the one-time token
//! that arch-manager printed, then signs in. There are no default credentials.

use leptos::prelude::*;
use leptos_meta::Title;

use leptos::server_fn::ServerFn;

use crate::api::Setup;
use crate::components::{FormErrors, FormMessage, SubmitButton, TextField};
use crate::validate;

/// The setup form: user name, password (at least 12 characters) and confirmation.
#[component]
pub fn SetupPage() -> impl IntoView {
    let token = super::url_query(|get| get("token"));
    let missing = token.is_empty();
    view! {
        <Title text="Set up"/>
        <main id="main" class="narrow">
            <h1>"Create the administrator"</h1>
            <p>"This is the first start of this Arch manager. Choose the administrator's user name and password."</p>
            {missing.then(|| view! {
                <p class="notice">"This page needs the setup URL printed by arch-manager (it ends in "
                    <code>"?token=…"</code>")."</p>
            })}
            <SetupForm token/>
        </main>
    }
}

/// The form; `token` is the one-time setup token from the URL.
#[cfg_attr(feature = "bundle-public", island)]
#[cfg_attr(not(feature = "bundle-public"), component)]
fn SetupForm(token: String) -> impl IntoView {
    let token = StoredValue::new(token);
    let token = move || token.get_value();
    let action = ServerAction::<Setup>::new();
    let errors = FormErrors::new();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    Effect::new(move |_| match action.value().get() {
        Some(Err(err)) => errors.show(&err),
        Some(Ok(())) => errors.clear(),
        None => {}
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let checked = validate::username(&username.get_untracked()).and_then(|name| {
            validate::new_password(&password.get_untracked(), &confirm.get_untracked())
                .map(|()| name)
        });
        if let Some(name) = errors.check(checked) {
            errors.clear();
            action.dispatch(Setup {
                token: token(),
                username: name,
                password: password.get_untracked(),
                confirm: confirm.get_untracked(),
            });
        }
    };
    let pending = action.pending();
    view! {
            <form method="post" action=Setup::PATH class="card" on:submit=on_submit novalidate>
                <input type="hidden" name="token" value=token/>
                <FormMessage errors/>
                <TextField id="setup-username" field="username" label="User name" value=username errors
                    required=true autocomplete="username"/>
                <TextField id="setup-password" field="password" label="Password" value=password errors
                    kind="password" required=true autocomplete="new-password" minlength=validate::MIN_PASSWORD_CHARS
                    hint="At least 12 characters."/>
                <TextField id="setup-confirm" field="confirm" label="Confirm password" value=confirm errors
                    kind="password" required=true autocomplete="new-password"/>
                <SubmitButton label="Create administrator" working="Creating…" pending primary=true/>
            </form>
    }
}
