//! API tokens page (`/tokens`): the tokens of the REST API with their role and when they were
//! created and last used, a form to create one with a role (its secret is shown once) and
//! revocation. Creating and revoking need the owner role; the manager refuses the others.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::api::{create_token, list_tokens, revoke_token};
use crate::components::{
    role_label, ConfirmDelete, ErrorBox, FormErrors, FormMessage, RoleSelect, SubmitButton,
    TextField, Timestamp,
};
use crate::model::TokenView;

/// The tokens page.
#[component]
pub fn TokensPage() -> impl IntoView {
    view! {
        <Title text="API tokens"/>
        <h1>"API tokens"</h1>
        <p>"Bearer tokens for the REST API (" <code>"/v1"</code> "). Only a hash is stored."</p>
        <Tokens/>
    }
}

/// The tokens, the create form and revocation.
#[cfg_attr(feature = "bundle-admin", island)]
#[cfg_attr(not(feature = "bundle-admin"), component)]
fn Tokens() -> impl IntoView {
    let tokens = Resource::new(|| (), |_| list_tokens());
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(rules::Role::Viewer);
    let secret = RwSignal::new(None::<String>);
    let errors = FormErrors::new();
    let pending = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        pending.set(true);
        spawn_local(async move {
            match create_token(name.get_untracked(), role.get_untracked()).await {
                Ok(created) => {
                    secret.set(Some(created.secret));
                    name.set(String::new());
                    tokens.refetch();
                }
                Err(err) => errors.show(&err),
            }
            pending.set(false);
        });
    };
    view! {
        <form class="card" novalidate on:submit=submit>
            <FormMessage errors/>
            <TextField id="token-name" field="name" label="Name" value=name errors autocomplete="off"
                hint="What the token is for, e.g. ci."/>
            <RoleSelect id="token-role" label="Role" role/>
            <div class="form-actions">
                <SubmitButton label="Create token" working="Creating…" pending testid="create-token" primary=true/>
            </div>
        </form>
        {move || secret.get().map(|s| view! {
            <p class="notice" role="status">
                "New token (copy it now, it is not shown again): " <code data-testid="token-secret">{s}</code>
            </p>
        })}
        <Suspense fallback=|| view! { <p>"Loading tokens…"</p> }>
            {move || tokens.get().map(|r| match r {
                Ok(list) => view! { <TokenTable list on_change=Callback::new(move |()| tokens.refetch())/> }.into_any(),
                Err(error) => view! { <ErrorBox error/> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn TokenTable(list: Vec<TokenView>, on_change: Callback<()>) -> impl IntoView {
    if list.is_empty() {
        return view! { <p data-testid="no-tokens">"No API tokens yet."</p> }.into_any();
    }
    let now = Signal::derive(crate::format::now_ms);
    let pending = RwSignal::new(false);
    let error = RwSignal::new(None::<crate::AppError>);
    let rows = list
        .into_iter()
        .map(|t| {
            let id = t.id;
            let revoke = Callback::new(move |()| {
                pending.set(true);
                error.set(None);
                spawn_local(async move {
                    match revoke_token(id).await {
                        Ok(()) => on_change.run(()),
                        Err(e) => error.set(Some(e)),
                    }
                    pending.set(false);
                });
            });
            view! {
                <tr data-testid=format!("token-{id}")>
                    <td>{t.name.clone()}</td>
                    <td data-testid=format!("token-{id}-role")>{role_label(t.role)}</td>
                    <td><Timestamp at_ms=t.created_at now_ms=now testid=format!("token-{id}-created")/></td>
                    <td>{match t.last_used_at {
                        Some(at) => view! { <Timestamp at_ms=at now_ms=now testid=format!("token-{id}-used")/> }.into_any(),
                        None => view! { <span>"never"</span> }.into_any(),
                    }}</td>
                    <td><ConfirmDelete what=format!("token {}", t.name) testid=format!("token-{id}")
                        on_confirm=revoke pending/></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="field-error" role="alert" data-testid="token-error">{move || error.get().map(|e| e.to_string())}</p>
        <table class="card">
            <thead><tr><th>"Name"</th><th>"Role"</th><th>"Created"</th><th>"Last used"</th>
                <th><span class="visually-hidden">"Actions"</span></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
