//! Users page (`/users`): one page of users at a time — found by name, filtered by status and
//! sorted by the manager (`?q&status&sort&after`, keyset pages as in `GET /v1/users`) — the
//! create form, in-place editing of quota and enabled, delete with confirmation, and actions on
//! a selection of users (enable, disable, reset usage and delete, all or none). The list
//! reloads when `/events` reports that users changed; the selection survives reloads and pages.
//! Test ids: `user-{id}`, `user-{id}-select`, `user-{id}-edit`, `user-{id}-save`,
//! `user-{id}-delete`, `users-select-all`, `users-status`, `users-sort`, `users-apply`,
//! `users-total`, `users-next`, `users-first`, `bulk-count`, `bulk-enable`, `bulk-disable`,
//! `bulk-reset[-confirm]`, `bulk-delete[-confirm]`, `bulk-clear`, `bulk-status`, ….

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::api::{
    create_user, delete_user, delete_users, list_users, reset_users_usage, set_users_enabled,
    update_user,
};
use crate::components::{
    CheckField, ConfirmAction, ConfirmDelete, ErrorBox, FormErrors, FormMessage, SubmitButton,
    TextField,
};
use crate::format;
use crate::live;
use crate::model::{NewUserForm, UserEdit, UserView, UsersPage, UsersQuery};
use crate::validate;

/// State of the one row being edited (kept outside the rows so a reload does not lose it).
#[derive(Clone, Copy)]
struct EditState {
    id: RwSignal<Option<i64>>,
    quota: RwSignal<String>,
    enabled: RwSignal<bool>,
    errors: FormErrors,
}

/// The users page: the title and the filters are rendered on the server, the rest is an island.
#[component]
pub fn UsersPage() -> impl IntoView {
    let query = super::url_query(|get| UsersQuery {
        q: get("q"),
        status: get("status"),
        sort: get("sort"),
        after: get("after"),
        limit: get("limit"),
    });
    view! {
        <Title text="Users"/>
        <h1>"Users"</h1>
        <Filters query=query.clone()/>
        <Users query/>
    }
}

/// One page of users (`query`: the URL's parameters), with the selection, the actions on it and
/// the create form; reloaded when users change.
#[cfg_attr(feature = "bundle-users", island)]
#[cfg_attr(not(feature = "bundle-users"), component)]
fn Users(query: UsersQuery) -> impl IntoView {
    let live = live::use_live();
    let query = Memo::new(move |_| query.clone());
    let users = Resource::new(
        move || (query.get(), live.users_version.get()),
        |(query, _)| list_users(query),
    );
    let reload = Callback::new(move |()| live.reload_users());
    let edit = EditState {
        id: RwSignal::new(None),
        quota: RwSignal::new(String::new()),
        enabled: RwSignal::new(true),
        errors: FormErrors::new(),
    };
    let page = move || users.get().and_then(Result::ok);
    let rows = move || page().map(|p| p.users).unwrap_or_default();
    let selected = RwSignal::new(BTreeSet::<i64>::new());
    let shown_ids = move || rows().into_iter().map(|u| u.id).collect::<BTreeSet<_>>();
    let all_selected = move || {
        let shown = shown_ids();
        !shown.is_empty() && selected.with(|s| shown.is_subset(s))
    };
    let select_all = move |ev: leptos::ev::Event| {
        let shown = shown_ids();
        if event_target_checked(&ev) {
            selected.update(|s| s.extend(shown));
        } else {
            selected.update(|s| s.retain(|id| !shown.contains(id)));
        }
    };
    view! {
        <Transition fallback=|| view! { <p>"Loading users…"</p> }>
            {move || users.get().and_then(Result::err).map(|error| view! { <ErrorBox error/> })}
            <BulkActions selected on_done=reload/>
            <div class="table-wrap">
                <table class="data" data-testid="users-table">
                    <caption class="visually-hidden">"Users"</caption>
                    <thead>
                        <tr>
                            <th scope="col" class="select">
                                <input type="checkbox" data-testid="users-select-all" aria-label="Select all users shown"
                                    prop:checked=all_selected on:change=select_all/>
                            </th>
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
                            <UserRow user edit selected on_change=reload/>
                        </For>
                    </tbody>
                </table>
            </div>
            <Show when=move || page().is_some_and(|p| p.users.is_empty())>
                <p class="empty" data-testid="users-empty">
                    {move || if query.with(|q| q.to_params().is_empty()) { "No users yet." } else { "No user matches." }}
                </p>
            </Show>
            <Pager query page=Signal::derive(page)/>
        </Transition>
        <NewUser on_created=reload/>
    }
}

/// The search, filter and sort form: a plain GET form (a new page load).
#[component]
fn Filters(query: UsersQuery) -> impl IntoView {
    const STATUSES: [(&str, &str); 6] = [
        ("", "All users"),
        ("enabled", "Enabled"),
        ("disabled", "Disabled"),
        ("quota", "Disabled: quota"),
        ("expired", "Disabled: expired"),
        ("manual", "Disabled: manual"),
    ];
    const SORTS: [(&str, &str); 7] = [
        ("", "Oldest first (ID)"),
        ("-created", "Newest first"),
        ("name", "Name A–Z"),
        ("-name", "Name Z–A"),
        ("-usage", "Most usage first"),
        ("usage", "Least usage first"),
        ("-id", "Highest ID first"),
    ];
    let options = |list: &'static [(&'static str, &'static str)],
                   current: fn(&UsersQuery) -> &str| {
        list.iter()
            .map(|(value, label)| {
                let selected = current(&query) == *value;
                view! { <option value=*value selected=selected>{*label}</option> }
            })
            .collect_view()
    };
    view! {
        <form method="get" action="/users" class="toolbar" role="search" aria-label="Find users">
            <div class="field">
                <label for="users-q">"Name contains"</label>
                <input id="users-q" name="q" type="search" autocomplete="off"
                    value=query.q.clone()/>
            </div>
            <div class="field">
                <label for="users-status">"Status"</label>
                <select id="users-status" name="status" data-testid="users-status">
                    {options(&STATUSES, |q| q.status.as_str())}
                </select>
            </div>
            <div class="field">
                <label for="users-sort">"Sort"</label>
                <select id="users-sort" name="sort" data-testid="users-sort">
                    {options(&SORTS, |q| q.sort.as_str())}
                </select>
            </div>
            <div class="form-actions">
                <button type="submit" data-testid="users-apply">"Show"</button>
                <a href="/users" data-testid="users-reset-filters">"Clear"</a>
            </div>
        </form>
    }
}

/// The count of matching users and the links to the first and the next page.
#[component]
fn Pager(query: Memo<UsersQuery>, page: Signal<Option<UsersPage>>) -> impl IntoView {
    let total = move || page.with(|p| p.as_ref().map_or(0, |p| p.total));
    let shown = move || page.with(|p| p.as_ref().map_or(0, |p| p.users.len()));
    let next = move || {
        page.with(|p| p.as_ref().and_then(|p| p.next.clone()))
            .map(|after| {
                UsersQuery {
                    after,
                    ..query.get()
                }
                .href()
            })
    };
    let first = move || {
        query.with(|q| !q.after.is_empty()).then(|| {
            UsersQuery {
                after: String::new(),
                ..query.get()
            }
            .href()
        })
    };
    view! {
        <nav class="pager" aria-label="Pages of users">
            <span data-testid="users-total">{move || format!("{} of {} users", shown(), total())}</span>
            {move || first().map(|href| view! { <a href=href data-testid="users-first">"First page"</a> })}
            {move || next().map(|href| view! { <a href=href data-testid="users-next" rel="next">"Next page"</a> })}
        </nav>
    }
}

/// An action on the selected users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bulk {
    Enable,
    Disable,
    ResetUsage,
    Delete,
}

/// Runs `what` on `ids`; the sentence that reports it done.
async fn run_bulk(what: Bulk, ids: Vec<i64>) -> Result<String, crate::AppError> {
    let users = |n: usize| format::count(n, "user", "users");
    Ok(match what {
        Bulk::Enable => format!(
            "{} enabled.",
            users(set_users_enabled(ids, true).await?.len())
        ),
        Bulk::Disable => format!(
            "{} disabled.",
            users(set_users_enabled(ids, false).await?.len())
        ),
        Bulk::ResetUsage => format!(
            "Usage reset for {}.",
            users(reset_users_usage(ids).await?.len())
        ),
        Bulk::Delete => format!("{} deleted.", users(delete_users(ids).await?)),
    })
}

/// What can be done to the selected users at once; each action applies to all of them or, on
/// any error, to none. Reset and delete ask for confirmation first.
#[component]
fn BulkActions(selected: RwSignal<BTreeSet<i64>>, on_done: Callback<()>) -> impl IntoView {
    let run = Action::new(|(what, ids): &(Bulk, Vec<i64>)| run_bulk(*what, ids.clone()));
    let last = RwSignal::new(None::<Bulk>);
    Effect::new(move |_| {
        if let Some(Ok(_)) = run.value().get() {
            // Deleted users cannot stay selected.
            if last.get_untracked() == Some(Bulk::Delete) {
                selected.set(BTreeSet::new());
            }
            on_done.run(());
        }
    });
    let dispatch = move |what: Bulk| {
        last.set(Some(what));
        run.dispatch((what, selected.get_untracked().into_iter().collect()));
    };
    let count = move || selected.with(BTreeSet::len);
    let any = move || count() > 0;
    let status = move || {
        if run.pending().get() {
            return Some(view! { <span>"Working…"</span> }.into_any());
        }
        run.value().get().map(|r| match r {
            Ok(done) => view! { <span class="ok-text">{done}</span> }.into_any(),
            Err(e) => {
                view! { <span class="field-error" role="alert">{e.to_string()}</span> }.into_any()
            }
        })
    };
    view! {
        <div class="bulk-bar" role="group" aria-label="Selected users">
            <span data-testid="bulk-count">{move || format!("{} selected", count())}</span>
            <Show when=any>
                <button type="button" data-testid="bulk-enable" disabled=move || run.pending().get()
                    on:click=move |_| dispatch(Bulk::Enable)>"Enable"</button>
                <button type="button" data-testid="bulk-disable" disabled=move || run.pending().get()
                    on:click=move |_| dispatch(Bulk::Disable)>"Disable"</button>
                <ConfirmAction label="Reset usage"
                    question=Signal::derive(move || format!("Reset the usage of {} users to 0?", count()))
                    yes="Yes, reset" working="Resetting…" testid="bulk-reset"
                    on_confirm=Callback::new(move |()| dispatch(Bulk::ResetUsage))
                    pending=run.pending()/>
                <ConfirmAction label="Delete"
                    question=Signal::derive(move || format!("Delete {} users? This cannot be undone.", count()))
                    yes="Yes, delete" working="Deleting…" testid="bulk-delete"
                    on_confirm=Callback::new(move |()| dispatch(Bulk::Delete))
                    pending=run.pending()/>
                <button type="button" data-testid="bulk-clear" on:click=move |_| selected.set(BTreeSet::new())>
                    "Clear selection"
                </button>
            </Show>
            <span aria-live="polite" data-testid="bulk-status">{status}</span>
        </div>
    }
}

/// One user; shows inputs for quota and enabled while it is the row being edited.
#[component]
fn UserRow(
    user: UserView,
    edit: EditState,
    selected: RwSignal<BTreeSet<i64>>,
    on_change: Callback<()>,
) -> impl IntoView {
    let live = live::use_live();
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
            selected.update(|s| {
                s.remove(&id);
            });
            on_change.run(());
        }
    });
    let delete_error = move || delete.value().get().and_then(Result::err);
    view! {
        <tr data-testid=format!("user-{id}")>
            <td class="select">
                <input type="checkbox" data-testid=t("select") aria-label=format!("Select {name}")
                    prop:checked=move || selected.with(|s| s.contains(&id))
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        selected.update(|s| { if on { s.insert(id); } else { s.remove(&id); } });
                    }/>
            </td>
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
                        <SubmitButton label="Save" working="Saving…" pending=saving testid=t("save") primary=true/>
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
                    <SubmitButton label="Create user" working="Creating…" pending=saving testid="create-user" primary=true/>
                </div>
            </form>
            <FormMessage errors/>
            <p class="ok-text" aria-live="polite" data-testid="user-created">
                {move || created.get().map(|n| format!("User {n} was created."))}
            </p>
        </section>
    }
}
