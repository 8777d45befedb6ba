//! Users page (`/users`): the user list, the create form, in-place editing of quota and enabled,
//! delete with confirmation. The list reloads when `/events` reports that users changed.
//! Test ids: `user-{id}`, `user-{id}-edit`, `user-{id}-save`, `user-{id}-delete`, ….

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::api::{create_user, delete_user, list_users, update_user};
use crate::components::{CheckField, ConfirmDelete, ErrorBox, FormErrors, FormMessage, TextField};
use crate::format;
use crate::live::LiveState;
use crate::model::{NewUserForm, UserEdit, UserView};
use crate::validate;

/// State of the one row being edited (kept outside the rows so a reload does not lose it).
#[derive(Clone, Copy)]
struct EditState {
    id: RwSignal<Option<i64>>,
    quota: RwSignal<String>,
    enabled: RwSignal<bool>,
    errors: FormErrors,
}

/// The users page.
#[component]
pub fn UsersPage() -> impl IntoView {
    let live = expect_context::<LiveState>();
    let users = Resource::new(move || live.users_version.get(), |_| list_users());
    let reload = Callback::new(move |()| live.reload_users());
    let edit = EditState {
        id: RwSignal::new(None),
        quota: RwSignal::new(String::new()),
        enabled: RwSignal::new(true),
        errors: FormErrors::new(),
    };
    let rows = move || users.get().and_then(Result::ok).unwrap_or_default();
    view! {
        <Title text="Users"/>
        <h1>"Users"</h1>
        <Transition fallback=|| view! { <p>"Loading users…"</p> }>
            {move || users.get().and_then(Result::err).map(|error| view! { <ErrorBox error/> })}
            <div class="table-wrap">
                <table class="data" data-testid="users-table">
                    <caption class="visually-hidden">"Users"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"ID"</th>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Enabled"</th>
                            <th scope="col" class="num">"Quota (GB)"</th>
                            <th scope="col" class="num">"Usage (GB)"</th>
                            <th scope="col">"Disabled because"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=rows key=|u: &UserView| u.clone() let:user>
                            <UserRow user edit on_change=reload/>
                        </For>
                    </tbody>
                </table>
            </div>
            <Show when=move || users.get().and_then(Result::ok).is_some_and(|u| u.is_empty())>
                <p class="empty" data-testid="users-empty">"No users yet."</p>
            </Show>
        </Transition>
        <NewUser on_created=reload/>
    }
}

/// One user; shows inputs for quota and enabled while it is the row being edited.
#[component]
fn UserRow(user: UserView, edit: EditState, on_change: Callback<()>) -> impl IntoView {
    let live = expect_context::<LiveState>();
    let id = user.id;
    let quota_bytes = user.quota_bytes;
    let name = user.name.clone();
    let current = live.user(user);
    let enabled = move || current.with(|u| u.enabled);
    let editing = move || edit.id.get() == Some(id);
    let t = move |suffix: &str| format!("user-{id}-{suffix}");
    let start = move |_| {
        edit.errors.clear();
        edit.quota.set(format::gb_input(quota_bytes));
        edit.enabled.set(current.with_untracked(|u| u.enabled));
        edit.id.set(Some(id));
    };
    let saving = RwSignal::new(false);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(quota_bytes) = edit
            .errors
            .check(validate::quota_gb(&edit.quota.get_untracked()))
        else {
            return;
        };
        let changes = UserEdit {
            quota_bytes,
            enabled: edit.enabled.get_untracked(),
        };
        saving.set(true);
        spawn_local(async move {
            match update_user(id, changes).await {
                Ok(_) => {
                    edit.id.set(None);
                    on_change.run(());
                }
                Err(err) => edit.errors.show(&err),
            }
            saving.set(false);
        });
    };
    let delete = Action::new(move |id: &i64| delete_user(*id));
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            on_change.run(());
        }
    });
    let delete_error = move || delete.value().get().and_then(Result::err);
    view! {
        <tr data-testid=format!("user-{id}")>
            <td>{id}</td>
            <td data-testid=t("name")><a href=format!("/users/{id}") data-testid=t("open")>{name.clone()}</a></td>
            <Show
                when=editing
                fallback=move || view! {
                    <td data-testid=t("enabled")>{move || if enabled() { "yes" } else { "no" }}</td>
                    <td class="num" data-testid=t("quota")>{format::quota(quota_bytes)}</td>
                }
            >
                <td>
                    <CheckField id=format!("user-{id}-enabled-input") field="enabled" label="Enabled"
                        checked=edit.enabled errors=edit.errors hide_label=true/>
                </td>
                <td class="num">
                    <TextField id=format!("user-{id}-quota-input") field="quota_bytes" label="Quota (GB)"
                        value=edit.quota errors=edit.errors inputmode="decimal" hint="0 = unlimited" hide_label=true/>
                </td>
            </Show>
            <td class="num" data-testid=t("usage")>{move || format::gb(current.with(|u| u.usage_bytes))}</td>
            <td data-testid=t("reason")>
                {move || current.with(|u| if u.enabled { None } else { u.disabled_reason.map(|r| r.as_str()) })}
            </td>
            <td class="actions">
                <Show
                    when=editing
                    fallback=move || {
                        let name = name.clone();
                        view! {
                            <button type="button" data-testid=t("edit") aria-label=format!("Edit {name}") on:click=start>"Edit"</button>
                            <ConfirmDelete what=format!("user {name}") testid=format!("user-{id}")
                                on_confirm=Callback::new(move |()| { delete.dispatch(id); })
                                pending=delete.pending()/>
                        }
                    }
                >
                    <form class="row-form" novalidate on:submit=save>
                        <button type="submit" class="primary" data-testid=t("save") disabled=move || saving.get()>"Save"</button>
                        <button type="button" data-testid=t("cancel") on:click=move |_| edit.id.set(None)>"Cancel"</button>
                    </form>
                    <FormMessage errors=edit.errors/>
                </Show>
                {move || delete_error().map(|e| view! { <p class="field-error" role="alert">{e.to_string()}</p> })}
            </td>
        </tr>
    }
}

/// The create-user form.
#[component]
fn NewUser(on_created: Callback<()>) -> impl IntoView {
    let errors = FormErrors::new();
    let name = RwSignal::new(String::new());
    let quota = RwSignal::new("0".to_owned());
    let enabled = RwSignal::new(true);
    let saving = RwSignal::new(false);
    let created = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        created.set(None);
        let form = validate::user_name(&name.get_untracked()).and_then(|name| {
            let quota_bytes = validate::quota_gb(&quota.get_untracked())?;
            Ok(NewUserForm {
                name,
                quota_bytes,
                enabled: enabled.get_untracked(),
            })
        });
        let Some(form) = errors.check(form) else {
            return;
        };
        saving.set(true);
        spawn_local(async move {
            match create_user(form).await {
                Ok(user) => {
                    name.set(String::new());
                    quota.set("0".to_owned());
                    enabled.set(true);
                    created.set(Some(user.name));
                    on_created.run(());
                }
                Err(err) => errors.show(&err),
            }
            saving.set(false);
        });
    };
    view! {
        <section class="card" aria-labelledby="new-user-title">
            <h2 id="new-user-title">"Create user"</h2>
            <form class="inline-form" novalidate on:submit=submit>
                <TextField id="new-user-name" field="name" label="Name" value=name errors required=true
                    autocomplete="off"/>
                <TextField id="new-user-quota" field="quota_bytes" label="Quota (GB)" value=quota errors
                    inputmode="decimal" hint="0 = unlimited"/>
                <CheckField id="new-user-enabled" field="enabled" label="Enabled" checked=enabled errors/>
                <div class="form-actions">
                    <button type="submit" class="primary" data-testid="create-user" disabled=move || saving.get()>
                        "Create user"
                    </button>
                </div>
            </form>
            <FormMessage errors/>
            <p class="ok-text" aria-live="polite" data-testid="user-created">
                {move || created.get().map(|n| format!("User {n} was created."))}
            </p>
        </section>
    }
}
