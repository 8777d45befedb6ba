//! Audit log page (`/audit`): who changed what and when, every sign-in and every config push,
//! newest first, filtered by area or action and by actor (a GET form: `?action&actor`, works
//! without the browser bundle), paged with `?before` (an entry id). Reloads when `/events`
//! reports a change of users, nodes or settings. Test ids: `audit-table`, `audit-{id}`,
//! `audit-{id}-action`, `audit-{id}-actor`, `audit-{id}-object`, `audit-{id}-changes`,
//! `audit-{id}-outcome`, `audit-action`, `audit-actor`, `audit-apply`, `audit-older`,
//! `audit-newest`, `audit-empty`.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::load_audit;
use crate::components::{ErrorBox, Timestamp};
use crate::live;
use crate::model::{AuditFilter, AuditPageView, AuditView};

/// The areas and actions the filter offers.
const ACTIONS: [(&str, &str); 8] = [
    ("", "Everything"),
    ("user.", "Users"),
    ("node.", "Nodes"),
    ("node.push", "Config pushes"),
    ("settings.", "Settings"),
    ("admin.", "Administrators"),
    ("token.", "API tokens"),
    ("sign-in", "Sign-ins"),
];

/// The audit log page: the title and the filter are rendered on the server, the entries are an
/// island.
#[component]
pub fn AuditPage() -> impl IntoView {
    let filter = super::url_query(|get| AuditFilter {
        action: get("action"),
        actor: get("actor"),
        before: get("before"),
    });
    view! {
        <Title text="Audit log"/>
        <h1>"Audit log"</h1>
        <form method="get" action="/audit" class="toolbar" role="search" aria-label="Filter the audit log">
            <div class="field">
                <label for="audit-action">"Show"</label>
                <select id="audit-action" name="action" data-testid="audit-action">
                    {ACTIONS.iter().map(|(value, label)| {
                        let selected = filter.action == *value;
                        view! { <option value=*value selected=selected>{*label}</option> }
                    }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="audit-actor">"By (name)"</label>
                <input id="audit-actor" name="actor" type="search" autocomplete="off" data-testid="audit-actor"
                    value=filter.actor.clone()/>
            </div>
            <div class="form-actions">
                <button type="submit" data-testid="audit-apply">"Show"</button>
                <a href="/audit">"Clear"</a>
            </div>
        </form>
        <AuditEntries filter/>
    }
}

/// One page of entries matching `filter`, reloaded when users or nodes change.
#[cfg_attr(feature = "bundle-admin", island)]
#[cfg_attr(not(feature = "bundle-admin"), component)]
fn AuditEntries(filter: AuditFilter) -> impl IntoView {
    let live = live::use_live();
    let filter = Memo::new(move |_| filter.clone());
    let page = Resource::new(
        move || {
            (
                filter.get(),
                live.users_version.get(),
                live.nodes_version.get(),
            )
        },
        |(filter, ..)| load_audit(filter),
    );
    let loaded = move || page.get().and_then(Result::ok);
    view! {
        <Transition fallback=|| view! { <p>"Loading the audit log…"</p> }>
            {move || page.get().and_then(Result::err).map(|error| view! { <ErrorBox error/> })}
            {move || loaded().map(|p| view! { <AuditTable page=p filter/> })}
        </Transition>
    }
}

#[component]
fn AuditTable(page: AuditPageView, filter: Memo<AuditFilter>) -> impl IntoView {
    if page.entries.is_empty() {
        return view! { <p class="empty" data-testid="audit-empty">"No entries."</p> }.into_any();
    }
    let now = Signal::derive(crate::format::now_ms);
    let older = page.next.map(|next| {
        AuditFilter {
            before: next.to_string(),
            ..filter.get_untracked()
        }
        .href()
    });
    let newest = filter.with_untracked(|f| !f.before.is_empty()).then(|| {
        AuditFilter {
            before: String::new(),
            ..filter.get_untracked()
        }
        .href()
    });
    let rows = page
        .entries
        .into_iter()
        .map(|e| view! { <AuditRow entry=e now/> })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="data" data-testid="audit-table">
                <caption class="visually-hidden">"Audit log, newest first"</caption>
                <thead><tr>
                    <th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"What"</th>
                    <th scope="col">"Object"</th><th scope="col">"Changes"</th><th scope="col">"Outcome"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <nav class="pager" aria-label="Pages of the audit log">
            {newest.map(|href| view! { <a href=href data-testid="audit-newest">"Newest entries"</a> })}
            {older.map(|href| view! { <a href=href data-testid="audit-older" rel="next">"Older entries"</a> })}
        </nav>
    }
    .into_any()
}

#[component]
fn AuditRow(entry: AuditView, now: Signal<i64>) -> impl IntoView {
    let id = entry.id;
    let t = move |suffix: &str| format!("audit-{id}-{suffix}");
    let object = match (&entry.object_kind, entry.object_id, &entry.object_name) {
        (Some(kind), Some(oid), name) if kind == "user" || kind == "node" => {
            let label = name.clone().unwrap_or_else(|| format!("{kind} {oid}"));
            view! { <a href=format!("/{kind}s/{oid}")>{format!("{kind} {label}")}</a> }.into_any()
        }
        (Some(kind), _, Some(name)) => view! { <span>{format!("{kind} {name}")}</span> }.into_any(),
        _ => view! { <span></span> }.into_any(),
    };
    let changes = entry
        .changes
        .iter()
        .map(|c| {
            let text = if c.before.is_empty() {
                format!("{}: {}", c.field, c.after)
            } else {
                format!("{}: {} → {}", c.field, c.before, c.after)
            };
            view! { <li>{text}</li> }
        })
        .collect_view();
    let who = match &entry.address {
        Some(address) => format!("{} ({}, {address})", entry.actor_name, entry.actor_kind),
        None => format!("{} ({})", entry.actor_name, entry.actor_kind),
    };
    view! {
        <tr data-testid=format!("audit-{id}")>
            <td><Timestamp at_ms=entry.at now_ms=now testid=t("at")/></td>
            <td data-testid=t("actor")>{who}</td>
            <td data-testid=t("action")><code>{entry.action.clone()}</code></td>
            <td data-testid=t("object")>{object}</td>
            <td data-testid=t("changes")><ul class="changes">{changes}</ul></td>
            <td data-testid=t("outcome")><span class=format!("outcome outcome-{}", entry.outcome)>{entry.outcome.clone()}</span></td>
        </tr>
    }
}
