//! Nodes page (`/nodes`): the node table with live push/pull status, times and usage, the
//! add-node form and delete with confirmation.
//!
//! The table renders from the `list_nodes` resource (server-side first); node events from
//! `/events` overlay each row through [`crate::live::LiveState`] without reloading the page. Stable
//! `data-testid`s: `node-{id}`, `node-{id}-push-status`, `node-{id}-pull-status`,
//! `node-{id}-pushed-at`, `node-{id}-pulled-at`, `node-{id}-usage`, `node-{id}-version`,
//! `node-{id}-name`, `node-{id}-address`, `node-{id}-multiplier`, `node-{id}-drift`, `node-{id}-edit`, `node-{id}-save`,
//! `node-{id}-cancel-edit`. A node's name opens its page (`/nodes/{id}`). Under each
//! row, [`channel`] shows the node's secure channel (pinned certificate, refused calls) with the
//! re-pin and token rotation actions.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::api::{delete_node, list_nodes, update_node};
use crate::components::{
    ConfirmDelete, ErrorBox, FormErrors, FormMessage, StatusBadge, SubmitButton, TextField,
    Timestamp,
};
use crate::format;
use crate::live;
use crate::model::{NodeForm, NodeView};
use crate::validate;

use super::add_node::AddNodeForm;

mod channel;
pub use channel::Fingerprint;

/// The nodes page.
#[component]
pub fn NodesPage() -> impl IntoView {
    view! {
        <Title text="Nodes"/>
        <h1>"Nodes"</h1>
        <Nodes/>
    }
}

/// The node table, live, and the add-node form.
#[cfg_attr(feature = "bundle-nodes", island)]
#[cfg_attr(not(feature = "bundle-nodes"), component)]
fn Nodes() -> impl IntoView {
    let live = live::use_live();
    provide_context(channel::ChannelNotes::new());
    let nodes = Resource::new(move || live.nodes_version.get(), |_| list_nodes());
    let reload = Callback::new(move |()| live.reload_nodes());
    let rows = move || {
        let removed = live.removed.get();
        nodes
            .get()
            .and_then(Result::ok)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| !removed.contains(&n.id))
            .collect::<Vec<_>>()
    };
    view! {
        <Transition fallback=|| view! { <p>"Loading nodes…"</p> }>
            {move || nodes.get().and_then(Result::err).map(|error| view! { <ErrorBox error/> })}
            <div class="table-wrap">
                <table class="data" data-testid="nodes-table">
                    <caption class="visually-hidden">"Nodes"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"ID"</th>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Address"</th>
                            <th scope="col">"Push"</th>
                            <th scope="col">"Pull"</th>
                            <th scope="col">"Pushed"</th>
                            <th scope="col">"Pulled"</th>
                            <th scope="col" class="num">"Usage (GB)"</th>
                            <th scope="col">"Config version"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=rows key=|n: &NodeView| n.clone() let:node>
                            <NodeRow base=node on_changed=reload/>
                        </For>
                    </tbody>
                </table>
            </div>
            <Show when=move || nodes.get().and_then(Result::ok).is_some_and(|n| n.is_empty())>
                <p class="empty" data-testid="nodes-empty">"No nodes yet. Add one below."</p>
            </Show>
        </Transition>
        <AddNodeForm on_added=reload/>
    }
}

/// One table row; live fields come from [`crate::live::LiveState`] when an event has arrived.
#[component]
fn NodeRow(base: NodeView, on_changed: Callback<()>) -> impl IntoView {
    let live = live::use_live();
    let id = base.id;
    let address = format!("{}:{}", base.host, base.http_port);
    let node = live.node(base);
    let now = Signal::from(live.now);
    let delete = Action::new(move |id: &i64| delete_node(*id));
    let error = move || delete.value().get().and_then(Result::err);
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            live.removed.update(|s| {
                s.insert(id);
            });
            on_changed.run(());
        }
    });
    let t = move |suffix: &str| format!("node-{id}-{suffix}");
    let edit = NodeEdit::new();
    let start = move |_| edit.start(&node.get_untracked());
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        edit.save(id, on_changed);
    };
    let shown = address.clone();
    view! {
        <tr data-testid=format!("node-{id}")>
            <td>{id}</td>
            <td>
                <Show
                    when=move || edit.open.get()
                    fallback=move || view! {
                        <span data-testid=t("name")>
                            <a href=format!("/nodes/{id}") data-testid=t("open")>{move || node.with(|n| n.name.clone())}</a>
                        </span>
                    }
                >
                    <TextField id=format!("node-{id}-name-input") field="name" label="Name" value=edit.name
                        errors=edit.errors autocomplete="off"/>
                </Show>
            </td>
            <td>
                <Show
                    when=move || edit.open.get()
                    fallback=move || view! {
                        <span data-testid=t("address")>{shown.clone()}</span>
                        {move || node.with(|n| n.last_error.clone()).map(|e| view! {
                            <span class="row-note" title=e.clone()>"last error: " {e.clone()}</span>
                        })}
                    }
                >
                    <TextField id=format!("node-{id}-host-input") field="host" label="Host" value=edit.host
                        errors=edit.errors autocomplete="off"/>
                    <TextField id=format!("node-{id}-port-input") field="http_port" label="HTTP port"
                        value=edit.port errors=edit.errors inputmode="numeric"/>
                    <TextField id=format!("node-{id}-token-input") field="http_token" label="New token"
                        value=edit.token errors=edit.errors kind="password" autocomplete="off"
                        hint="Empty keeps the current token."/>
                    <TextField id=format!("node-{id}-multiplier-input") field="usage_multiplier"
                        label="Usage multiplier" value=edit.multiplier errors=edit.errors inputmode="decimal"
                        hint="What a byte through this node counts for its users: 1 = as carried, 0.5 = half, 0 = free."/>
                </Show>
            </td>
            <td><StatusBadge status=Signal::derive(move || node.with(|n| n.push_status.clone())) testid=t("push-status")/></td>
            <td><StatusBadge status=Signal::derive(move || node.with(|n| n.pull_status.clone())) testid=t("pull-status")/></td>
            <td><Timestamp at_ms=Signal::derive(move || node.with(|n| n.pushed_at)) now_ms=now testid=t("pushed-at")/></td>
            <td><Timestamp at_ms=Signal::derive(move || node.with(|n| n.pulled_at)) now_ms=now testid=t("pulled-at")/></td>
            <td class="num">
                <span data-testid=t("usage")>{move || format::gb(node.with(|n| n.usage_bytes))}</span>
                {move || node.with(|n| (n.usage_multiplier != "1").then(|| n.usage_multiplier.clone())).map(|m| view! {
                    <span class="row-muted" data-testid=t("multiplier")
                        title="Counted for users with this multiplier">{format!("×{m}")}</span>
                })}
            </td>
            <td data-testid=t("version")>
                <code>{move || node.with(|n| n.applied_version.clone()).unwrap_or_else(|| "—".to_owned())}</code>
                {move || node.with(|n| n.drift).then(|| view! {
                    <span class="row-muted" data-testid=t("drift")
                        title="The node does not run its current config yet">"not current"</span>
                })}
            </td>
            <td class="actions">
                <Show
                    when=move || edit.open.get()
                    fallback=move || {
                        let address = address.clone();
                        view! {
                            <button type="button" data-testid=t("edit") aria-label=move || format!("Edit node {}", node.with(|n| n.name.clone()))
                                on:click=start>"Edit"</button>
                            <ConfirmDelete what=format!("node {} ({address})", node.with_untracked(|n| n.name.clone())) testid=format!("node-{id}")
                                on_confirm=Callback::new(move |()| { delete.dispatch(id); })
                                pending=delete.pending()/>
                        }
                    }
                >
                    <form class="row-form" novalidate on:submit=save>
                        <SubmitButton label="Save" working="Saving…" pending=edit.saving testid=t("save") primary=true/>
                        <button type="button" data-testid=t("cancel-edit")
                            on:click=move |_| edit.open.set(false)>"Cancel"</button>
                    </form>
                    <FormMessage errors=edit.errors/>
                </Show>
                {move || error().map(|e| view! { <p class="field-error" role="alert">{e.to_string()}</p> })}
            </td>
        </tr>
        <channel::ChannelRow node/>
    }
}

/// The in-row edit form of one node: name, address, API port, optionally a new token, and the
/// usage multiplier.
#[derive(Clone, Copy)]
struct NodeEdit {
    open: RwSignal<bool>,
    name: RwSignal<String>,
    host: RwSignal<String>,
    port: RwSignal<String>,
    token: RwSignal<String>,
    multiplier: RwSignal<String>,
    saving: RwSignal<bool>,
    errors: FormErrors,
}

impl NodeEdit {
    fn new() -> Self {
        NodeEdit {
            open: RwSignal::new(false),
            name: RwSignal::new(String::new()),
            host: RwSignal::new(String::new()),
            port: RwSignal::new(String::new()),
            token: RwSignal::new(String::new()),
            multiplier: RwSignal::new(String::new()),
            saving: RwSignal::new(false),
            errors: FormErrors::new(),
        }
    }

    fn start(&self, node: &NodeView) {
        self.errors.clear();
        self.name.set(node.name.clone());
        self.host.set(node.host.clone());
        self.port.set(node.http_port.to_string());
        self.token.set(String::new());
        self.multiplier.set(node.usage_multiplier.clone());
        self.open.set(true);
    }

    /// Validates in the browser, then saves; errors come back beside their fields.
    fn save(self, id: i64, on_saved: Callback<()>) {
        self.errors.clear();
        let form = validate::host("host", &self.host.get_untracked()).and_then(|host| {
            Ok(NodeForm {
                name: rules::input::node_name(&self.name.get_untracked())?,
                host,
                http_port: validate::port("http_port", &self.port.get_untracked(), false)?,
                http_token: validate::node_token(&self.token.get_untracked())?,
                usage_multiplier: {
                    let typed = self.multiplier.get_untracked().trim().to_owned();
                    rules::input::usage_multiplier_text(&typed)?;
                    typed
                },
                ..NodeForm::default()
            })
        });
        let Some(form) = self.errors.check(form) else {
            return;
        };
        self.saving.set(true);
        spawn_local(async move {
            match update_node(id, form).await {
                Ok(_) => {
                    self.open.set(false);
                    on_saved.run(());
                }
                Err(err) => self.errors.show(&err),
            }
            self.saving.set(false);
        });
    }
}
