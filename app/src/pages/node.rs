//! A node's page (`/nodes/{id}`): its live state (push and pull status and times, applied
//! config version against the one it should run, last error), "Push now / restart" (the spec's
//! manual restart), its usage and multiplier, "Reset usage" with confirmation, and its usage
//! history chart. Test ids: `node-detail`, `node-detail-push`, `node-detail-pull`,
//! `node-detail-pushed-at`, `node-detail-pulled-at`, `node-detail-version`, `node-detail-drift`,
//! `node-detail-usage`, `node-detail-multiplier`, `node-detail-error`, `node-restart`,
//! `node-restart-status`, `node-reset-usage[-confirm]`, `node-reset-status`.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{load_node, reset_node_usage, restart_node};
use crate::chart::{UsageChart, UsageHistory};
use crate::components::{ConfirmAction, ErrorBox, StatusBadge, Timestamp};
use crate::error::AppError;
use crate::format;
use crate::live;
use crate::model::{NodeView, UsageOf};

/// The node page (`id`: from the URL, `None` when it is not a number).
#[component]
pub fn NodePage() -> impl IntoView {
    let id = super::id_param();
    view! {
        <Title text="Node"/>
        <p><a href="/nodes">"← All nodes"</a></p>
        <Node id/>
    }
}

/// Everything about node `id`, live.
#[cfg_attr(feature = "bundle-dashboard", island)]
#[cfg_attr(not(feature = "bundle-dashboard"), component)]
fn Node(id: Option<i64>) -> impl IntoView {
    let live = live::use_live();
    let history = UsageHistory::new(id.map(UsageOf::Node), move || {
        let usage = id.and_then(|id| live.nodes.with(|m| m.get(&id).map(|n| n.usage_bytes)));
        (usage, live.nodes_version.get())
    });
    let id = move || id;
    let node = Resource::new(
        move || (id(), live.nodes_version.get()),
        |(id, _)| async move {
            match id {
                Some(id) => load_node(id).await,
                None => Err(AppError::NotFound("this node".to_owned())),
            }
        },
    );
    // Owned by the page: a live reload re-renders the summary, the outcomes must outlive it.
    let actions = NodeActions {
        reset: Action::new(move |id: &i64| reset_node_usage(*id)),
        restart: Action::new(move |id: &i64| restart_node(*id)),
    };
    view! {
        <Transition fallback=|| view! { <p>"Loading the node…"</p> }>
            {move || node.get().map(|r| match r {
                Ok(node) => view! { <NodeSummary node actions history/> }.into_any(),
                Err(error) => view! { <h1>"Node"</h1><ErrorBox error/> }.into_any(),
            })}
        </Transition>
    }
}

/// The page's actions on the node.
#[derive(Clone, Copy)]
struct NodeActions {
    reset: Action<i64, Result<NodeView, AppError>>,
    restart: Action<i64, Result<NodeView, AppError>>,
}

#[component]
fn NodeSummary(node: NodeView, actions: NodeActions, history: UsageHistory) -> impl IntoView {
    let NodeActions { reset, restart } = actions;
    let live = live::use_live();
    let id = node.id;
    let name = node.name.clone();
    let address = format!("{}:{}", node.host, node.http_port);
    let multiplier = node.usage_multiplier.clone();
    let node = live.node(node);
    let now = Signal::from(live.now);
    // After either action the node is loaded again (its live event carries the new state too).
    Effect::new(move |_| {
        if let Some(Ok(_)) = reset.value().get() {
            live.reload_nodes();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = restart.value().get() {
            live.reload_nodes();
        }
    });
    let restart_status = move || {
        if restart.pending().get() {
            return Some(view! { <span>"Restarting…"</span> }.into_any());
        }
        restart.value().get().map(|r| match r {
            Ok(n) => view! {
                <span class="ok-text">
                    {format!("Restarted: the node runs config {}.", n.applied_version.unwrap_or_default())}
                </span>
            }
            .into_any(),
            Err(e) => view! { <span class="field-error" role="alert">{e.to_string()}</span> }.into_any(),
        })
    };
    let status = move || {
        reset.value().get().map(|r| match r {
            Ok(_) => view! { <span class="ok-text">"Usage reset to 0."</span> }.into_any(),
            Err(e) => {
                view! { <span class="field-error" role="alert">{e.to_string()}</span> }.into_any()
            }
        })
    };
    view! {
        <h1 data-testid="node-detail">{format!("Node {name}")}</h1>
        <dl class="facts">
            <dt>"Address"</dt>
            <dd>{address}</dd>
            <dt>"Push"</dt>
            <dd><StatusBadge status=Signal::derive(move || node.with(|n| n.push_status.clone())) testid="node-detail-push"/>
                " " <Timestamp at_ms=Signal::derive(move || node.with(|n| n.pushed_at)) now_ms=now testid="node-detail-pushed-at"/></dd>
            <dt>"Pull"</dt>
            <dd><StatusBadge status=Signal::derive(move || node.with(|n| n.pull_status.clone())) testid="node-detail-pull"/>
                " " <Timestamp at_ms=Signal::derive(move || node.with(|n| n.pulled_at)) now_ms=now testid="node-detail-pulled-at"/></dd>
            <dt>"Applied config"</dt>
            <dd><code data-testid="node-detail-version">
                {move || node.with(|n| n.applied_version.clone()).unwrap_or_else(|| "—".to_owned())}
            </code>
                {move || node.with(|n| n.drift.then(|| n.desired_version.clone().unwrap_or_default())).map(|desired| view! {
                    <span class="row-muted" data-testid="node-detail-drift">
                        "Not the current config yet: the manager would push "
                        <code>{desired}</code>"."
                    </span>
                })}
            </dd>
            <dt>"Last error"</dt>
            <dd data-testid="node-detail-error">
                {move || node.with(|n| n.last_error.clone()).unwrap_or_else(|| "none".to_owned())}
            </dd>
            <dt>"Usage"</dt>
            <dd><span data-testid="node-detail-usage">{move || format::gb(node.with(|n| n.usage_bytes))}</span>" GB"</dd>
            <dt>"Usage multiplier"</dt>
            <dd data-testid="node-detail-multiplier">{format!("×{multiplier}")}
                <span class="hint">" (edit it on the nodes page)"</span></dd>
        </dl>
        <p class="form-actions">
            <button type="button" data-testid="node-restart" disabled=move || restart.pending().get()
                aria-busy=move || restart.pending().get().then_some("true")
                on:click=move |_| { restart.dispatch(id); }>"Push now / restart"</button>
            <span aria-live="polite" data-testid="node-restart-status">{restart_status}</span>
        </p>
        <p class="hint">
            "Pushes the node's full config now; the node rebuilds its data plane from scratch and keeps "
            "every session the config still allows."
        </p>
        <p class="form-actions">
            <ConfirmAction label="Reset usage" question=format!("Reset the usage of node {name} to 0?")
                yes="Yes, reset" working="Resetting…" testid="node-reset-usage"
                on_confirm=Callback::new(move |()| { reset.dispatch(id); }) pending=reset.pending()/>
            <span aria-live="polite" data-testid="node-reset-status">{status}</span>
        </p>
        <UsageChart history/>
    }
}
