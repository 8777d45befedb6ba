//! The secure channel of one node, as a second row under it in the nodes table: the pinned
//! certificate fingerprint (or a "plain HTTP (not protected)" badge), the node's refused calls,
//! a token rotation under way, and the two channel actions, each confirmed first: **Re-pin** the
//! certificate a node presented after its pinned one changed, and **Rotate token**.
//!
//! Outcomes of the actions are kept per node in [`ChannelNotes`], owned by the page, so they
//! survive the row being rebuilt when the list reloads after the action. Tokens are never part of
//! what the panel receives or shows. Stable `data-testid`s: `node-{id}-fingerprint`,
//! `node-{id}-insecure`, `node-{id}-refused`, `node-{id}-rotation-pending`,
//! `node-{id}-cert-changed`, `node-{id}-pinned`, `node-{id}-presented`, `node-{id}-repin`
//! (`-confirm`, `-cancel`), `node-{id}-rotate-token` (`-confirm`, `-cancel`),
//! `node-{id}-channel-status`.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{repin_node, rotate_node_token};
use crate::components::ConfirmAction;
use crate::error::AppError;
use crate::format;
use crate::model::NodeView;

/// Columns of the nodes table, spanned by the channel row.
pub const TABLE_COLUMNS: u32 = 9;

/// The outcome of a channel action on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Running; the text says what.
    Pending(&'static str),
    /// Done; the text says what happened.
    Done(&'static str),
    /// Refused or failed, with the manager's message.
    Failed(String),
}

/// Outcomes of channel actions per node id, provided as context by the nodes page.
#[derive(Clone, Copy)]
pub struct ChannelNotes(RwSignal<HashMap<i64, Note>>);

impl Default for ChannelNotes {
    fn default() -> Self {
        Self::new()
    }
}

impl ChannelNotes {
    pub fn new() -> Self {
        Self(RwSignal::new(HashMap::new()))
    }

    fn set(&self, id: i64, note: Note) {
        self.0.update(|m| {
            m.insert(id, note);
        });
    }

    fn get(&self, id: i64) -> Option<Note> {
        self.0.with(|m| m.get(&id).cloned())
    }

    /// Runs one action of node `id`, recording pending, success and failure.
    fn run<F>(self, id: i64, pending: &'static str, done: &'static str, call: F)
    where
        F: std::future::Future<Output = Result<NodeView, AppError>> + 'static,
    {
        if matches!(self.get(id), Some(Note::Pending(_))) {
            return;
        }
        self.set(id, Note::Pending(pending));
        spawn_local(async move {
            match call.await {
                Ok(_) => self.set(id, Note::Done(done)),
                Err(err) => {
                    if err.is_unauthorized() {
                        crate::live::go_to_login();
                    }
                    self.set(id, Note::Failed(err.to_string()));
                }
            }
        });
    }
}

/// A certificate fingerprint in monospace blocks of four; the blocks are spaced by CSS, so
/// selecting and copying gives the full value as one string.
#[component]
pub fn Fingerprint(#[prop(into)] value: String, #[prop(into)] testid: String) -> impl IntoView {
    let blocks = format::fingerprint_blocks(&value);
    view! {
        <code class="fingerprint" data-testid=testid>
            {blocks.into_iter().map(|b| view! { <span>{b}</span> }).collect_view()}
        </code>
    }
}

/// The channel row of one node; `node` carries the live fields.
#[component]
pub fn ChannelRow(node: Memo<NodeView>) -> impl IntoView {
    let notes = expect_context::<ChannelNotes>();
    let id = node.with_untracked(|n| n.id);
    let t = move |suffix: &str| format!("node-{id}-{suffix}");
    let pinned = Memo::new(move |_| node.with(|n| n.tls_fingerprint.clone()));
    let presented = Memo::new(move |_| node.with(|n| n.presented_fingerprint.clone()));
    let insecure = Memo::new(move |_| node.with(|n| n.insecure_http));
    let refused = Memo::new(move |_| node.with(|n| n.refused_calls));
    let rotating = Memo::new(move |_| node.with(|n| n.token_rotation_pending));
    let note = Memo::new(move |_| notes.get(id));
    let busy = Signal::derive(move || matches!(note.get(), Some(Note::Pending(_))));
    let repin = Callback::new(move |()| {
        notes.run(
            id,
            "Re-pinning…",
            "Re-pinned: the presented certificate is now trusted.",
            repin_node(id),
        );
    });
    let rotate = Callback::new(move |()| {
        notes.run(
            id,
            "Rotating the token…",
            "Token rotated",
            rotate_node_token(id),
        );
    });
    view! {
        <tr class="node-channel">
            <td colspan=TABLE_COLUMNS>
                <div class="channel-line">
                    <span class="channel-item">
                        <span class="channel-label">"Certificate: "</span>
                        {move || match (insecure.get(), pinned.get()) {
                            (true, _) => view! {
                                <span class="badge badge-warn" data-testid=t("insecure")>"plain HTTP (not protected)"</span>
                            }.into_any(),
                            (false, Some(fp)) => view! { <Fingerprint value=fp testid=t("fingerprint")/> }.into_any(),
                            (false, None) => view! {
                                <span class="muted" data-testid=t("fingerprint")>"not pinned yet (pinned at the first successful call)"</span>
                            }.into_any(),
                        }}
                    </span>
                    <span class="channel-item">
                        <span class="channel-label">"Refused calls: "</span>
                        <span data-testid=t("refused")>{move || refused.get()}</span>
                    </span>
                    <Show when=move || rotating.get()>
                        <span class="badge" data-testid=t("rotation-pending")>"token rotation pending"</span>
                    </Show>
                    <Show when=move || !insecure.get()>
                        <ConfirmAction
                            label="Rotate token"
                            aria_label=format!("Rotate the token of node {id}")
                            question=format!("Give node {id} a new token? The node accepts both until the manager has used the new one.")
                            yes="Yes, rotate"
                            working="Rotating…"
                            testid=t("rotate-token")
                            on_confirm=rotate
                            pending=busy
                        />
                    </Show>
                </div>
                <Show when=move || presented.get().is_some()>
                    <div class="notice danger" data-testid=t("cert-changed")>
                        <p><strong>"The node presented a different certificate"</strong></p>
                        <p>
                            "The manager refuses its calls and sends it nothing. This is expected after the node was reinstalled or its certificate replaced, but it could also be an attacker between the manager and the node. Compare the presented fingerprint with the one arch-node printed on the node before re-pinning."
                        </p>
                        <dl class="fingerprint-compare">
                            <div>
                                <dt>"Pinned"</dt>
                                <dd>{move || match pinned.get() {
                                    Some(fp) => view! { <Fingerprint value=fp testid=t("pinned")/> }.into_any(),
                                    None => view! { <span data-testid=t("pinned")>"none"</span> }.into_any(),
                                }}</dd>
                            </div>
                            <div>
                                <dt>"Presented"</dt>
                                <dd>{move || presented.get().map(|fp| view! { <Fingerprint value=fp testid=t("presented")/> })}</dd>
                            </div>
                        </dl>
                        <ConfirmAction
                            label="Re-pin"
                            aria_label=format!("Re-pin the certificate of node {id}")
                            question=format!("Trust the presented certificate for node {id} from now on?")
                            yes="Yes, re-pin"
                            working="Re-pinning…"
                            testid=t("repin")
                            on_confirm=repin
                            pending=busy
                        />
                    </div>
                </Show>
                <p class="channel-status" aria-live="polite" data-testid=t("channel-status")>
                    {move || note.get().map(|n| match n {
                        Note::Pending(text) => view! { <span class="muted">{text}</span> }.into_any(),
                        Note::Done(text) => view! { <span class="ok-text">{text}</span> }.into_any(),
                        Note::Failed(text) => view! { <span class="field-error" role="alert">{text}</span> }.into_any(),
                    })}
                </p>
            </td>
        </tr>
    }
}
