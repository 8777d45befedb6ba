//! Administrators page (`/admins`): every administrator with their role, a form to add one, a
//! role change and removal per row. Owners only may change anything (the manager refuses the
//! others and the page shows why); the last owner can be neither demoted nor removed. Test ids:
//! `admin-{id}`, `admin-{id}-role`, `admin-{id}-set-role`, `admin-{id}-delete[-confirm]`,
//! `admin-{id}-status`, `new-admin-*`, `add-admin`.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::api::{add_admin, delete_admin, list_admins, set_admin_role};
use crate::components::{
    role_label, ConfirmDelete, ErrorBox, FormErrors, FormMessage, RoleSelect, SubmitButton,
    TextField, Timestamp,
};
use crate::model::AdminView;

/// The administrators page.
#[component]
pub fn AdminsPage() -> impl IntoView {
    view! {
        <Title text="Administrators"/>
        <h1>"Administrators"</h1>
        <p>"Owners may change everything, operators users and nodes, viewers nothing."</p>
        <Admins/>
    }
}

/// The administrators, the role changes and removal, and the add form.
#[cfg_attr(feature = "bundle-admin", island)]
#[cfg_attr(not(feature = "bundle-admin"), component)]
fn Admins() -> impl IntoView {
    let admins = Resource::new(|| (), |_| list_admins());
    let reload = Callback::new(move |()| admins.refetch());
    view! {
        <Transition fallback=|| view! { <p>"Loading administrators…"</p> }>
            {move || admins.get().map(|r| match r {
                Ok(list) => view! { <AdminTable list on_change=reload/> }.into_any(),
                Err(error) => view! { <ErrorBox error/> }.into_any(),
            })}
        </Transition>
        <NewAdmin on_created=reload/>
    }
}

#[component]
fn AdminTable(list: Vec<AdminView>, on_change: Callback<()>) -> impl IntoView {
    let now = Signal::derive(crate::format::now_ms);
    let rows = list
        .into_iter()
        .map(|a| view! { <AdminRow admin=a now on_change/> })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="data" data-testid="admins-table">
                <caption class="visually-hidden">"Administrators"</caption>
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Role"</th><th scope="col">"Added"</th>
                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

#[component]
fn AdminRow(admin: AdminView, now: Signal<i64>, on_change: Callback<()>) -> impl IntoView {
    let id = admin.id;
    let t = move |suffix: &str| format!("admin-{id}-{suffix}");
    let role = RwSignal::new(admin.role);
    let set_role = Action::new(move |r: &rules::Role| set_admin_role(id, *r));
    let delete = Action::new(move |id: &i64| delete_admin(*id));
    Effect::new(move |_| {
        if let Some(Ok(_)) = set_role.value().get() {
            on_change.run(());
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            on_change.run(());
        }
    });
    let status = move || {
        if set_role.pending().get() || delete.pending().get() {
            return Some(view! { <span>"Saving…"</span> }.into_any());
        }
        let error = set_role
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| delete.value().get().and_then(Result::err));
        error.map(|e| {
            view! { <span class="field-error" role="alert">{e.to_string()}</span> }.into_any()
        })
    };
    view! {
        <tr data-testid=format!("admin-{id}")>
            <td data-testid=t("name")>{admin.username.clone()}</td>
            <td data-testid=t("current-role")>{role_label(admin.role)}</td>
            <td><Timestamp at_ms=admin.created_at now_ms=now testid=t("created")/></td>
            <td class="actions">
                <form class="inline" novalidate on:submit=move |ev| {
                    ev.prevent_default();
                    set_role.dispatch(role.get_untracked());
                }>
                    <RoleSelect id=t("role") label=format!("Role of {}", admin.username) role/>
                    <SubmitButton label="Change role" working="Changing…" pending=set_role.pending()
                        testid=t("set-role")/>
                </form>
                <ConfirmDelete what=format!("administrator {}", admin.username) testid=format!("admin-{id}")
                    on_confirm=Callback::new(move |()| { delete.dispatch(id); }) pending=delete.pending()/>
                <span aria-live="polite" data-testid=t("status")>{status}</span>
            </td>
        </tr>
    }
}

#[component]
fn NewAdmin(on_created: Callback<()>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let role = RwSignal::new(rules::Role::Operator);
    let errors = FormErrors::new();
    let pending = RwSignal::new(false);
    let done = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        done.set(None);
        pending.set(true);
        spawn_local(async move {
            let added = add_admin(
                name.get_untracked(),
                password.get_untracked(),
                confirm.get_untracked(),
                role.get_untracked(),
            )
            .await;
            match added {
                Ok(a) => {
                    done.set(Some(format!("{} added.", a.username)));
                    name.set(String::new());
                    password.set(String::new());
                    confirm.set(String::new());
                    on_created.run(());
                }
                Err(err) => errors.show(&err),
            }
            pending.set(false);
        });
    };
    view! {
        <form class="card" novalidate on:submit=submit aria-labelledby="new-admin-title">
            <h2 id="new-admin-title">"Add an administrator"</h2>
            <FormMessage errors/>
            <TextField id="new-admin-username" field="username" label="Name" value=name errors autocomplete="off"/>
            <TextField id="new-admin-password" field="password" label="Password" value=password errors
                kind="password" autocomplete="new-password"/>
            <TextField id="new-admin-confirm" field="confirm" label="Password again" value=confirm errors
                kind="password" autocomplete="new-password"/>
            <RoleSelect id="new-admin-role" label="Role" role/>
            <div class="form-actions">
                <SubmitButton label="Add administrator" working="Adding…" pending testid="add-admin" primary=true/>
                <span class="ok-text" role="status" data-testid="add-admin-status">{move || done.get()}</span>
            </div>
        </form>
    }
}
