//! The add-node form of the nodes page: checks the connection (`check_node`) before adding, shows
//! why a check failed (unreachable, wrong token, another certificate than the one given) with an
//! "add anyway" option, shows the certificate the node presented for the administrator to compare
//! with the one arch-node printed, and shows a generated token once.
//!
//! The optional TLS fingerprint is checked in the browser by the manager's rule
//! (`rules::input::fingerprint`); empty means the manager pins the certificate the node presents
//! when it is added. A plain HTTP node (`arch-node --insecure-http`) has no certificate.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{add_node, check_node};
use crate::components::{CheckField, FormErrors, FormMessage, SubmitButton, TextField};
use crate::error::AppError;
use crate::model::{CreatedNode, NodeForm};
use crate::validate;

use super::nodes::Fingerprint;

/// Where the add-node flow is.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Idle,
    Checking,
    Adding,
    /// The check failed; the admin may still add the node.
    CheckFailed(AppError),
    /// Added; `presented` is the certificate the connection check saw.
    Added {
        created: Box<CreatedNode>,
        presented: Option<String>,
    },
}

/// The form's values, checked in the browser by the rules the manager applies.
fn read_form(
    name: &str,
    host: &str,
    port: &str,
    token: &str,
    fingerprint: &str,
    insecure_http: bool,
) -> Result<NodeForm, AppError> {
    let name = match name.trim() {
        "" => String::new(),
        given => rules::input::node_name(given)?,
    };
    let host = validate::host("host", host)?;
    let http_port = validate::port("http_port", port, false)?;
    let http_token = validate::node_token(token)?;
    let tls_fingerprint = match fingerprint.trim() {
        "" => String::new(),
        _ if insecure_http => {
            return Err(AppError::invalid(
                "tls_fingerprint",
                "A plain HTTP node has no certificate to pin: leave this empty.",
            ));
        }
        given => rules::input::fingerprint(given)?,
    };
    Ok(NodeForm {
        name,
        host,
        http_port,
        http_token,
        tls_fingerprint,
        insecure_http,
        usage_multiplier: String::new(),
    })
}

/// The "Add node" form. `on_added` runs after a node was saved.
#[component]
pub fn AddNodeForm(on_added: Callback<()>) -> impl IntoView {
    let errors = FormErrors::new();
    let name = RwSignal::new(String::new());
    let host = RwSignal::new(String::new());
    let port = RwSignal::new(String::new());
    let token = RwSignal::new(String::new());
    let fingerprint = RwSignal::new(String::new());
    let insecure = RwSignal::new(false);
    let step = RwSignal::new(Step::Idle);

    let submit = move |skip_check: bool| {
        errors.clear();
        let form = read_form(
            &name.get_untracked(),
            &host.get_untracked(),
            &port.get_untracked(),
            &token.get_untracked(),
            &fingerprint.get_untracked(),
            insecure.get_untracked(),
        );
        let Some(form) = errors.check(form) else {
            step.set(Step::Idle);
            return;
        };
        spawn_local(async move {
            let mut presented = None;
            if !skip_check {
                step.set(Step::Checking);
                match check_node(form.clone()).await {
                    Ok(check) => presented = check.fingerprint,
                    Err(err) => {
                        errors.show(&err);
                        step.set(Step::CheckFailed(err));
                        return;
                    }
                }
                if let Some(seen) = presented
                    .as_ref()
                    .filter(|_| !form.tls_fingerprint.is_empty())
                {
                    if *seen != form.tls_fingerprint {
                        let err = AppError::invalid(
                            "tls_fingerprint",
                            format!("The node presented another certificate: {seen}. Compare it with the one arch-node printed."),
                        );
                        errors.show(&err);
                        step.set(Step::CheckFailed(err));
                        return;
                    }
                }
            }
            step.set(Step::Adding);
            match add_node(form).await {
                Ok(created) => {
                    name.set(String::new());
                    host.set(String::new());
                    port.set(String::new());
                    token.set(String::new());
                    fingerprint.set(String::new());
                    insecure.set(false);
                    step.set(Step::Added {
                        created: Box::new(created),
                        presented,
                    });
                    on_added.run(());
                }
                Err(err) => {
                    errors.show(&err);
                    step.set(Step::Idle);
                }
            }
        });
    };
    let busy = move || matches!(step.get(), Step::Checking | Step::Adding);

    view! {
        <section class="card" aria-labelledby="add-node-title">
            <h2 id="add-node-title">"Add node"</h2>
            <form class="inline-form" novalidate on:submit=move |ev| { ev.prevent_default(); submit(false); }>
                <TextField id="node-name" field="name" label="Name (optional)" value=name errors
                    autocomplete="off" hint="Shown to end users in their server lists; empty = node-ID."/>
                <TextField id="node-host" field="host" label="Host" value=host errors required=true
                    hint="Host name or IP address of the node."/>
                <TextField id="node-port" field="http_port" label="HTTP port" value=port errors required=true
                    inputmode="numeric" hint="The port of the node API (arch-node serve --listen)."/>
                <TextField id="node-token" field="http_token" label="Token (optional)" value=token errors
                    autocomplete="off" hint="Leave empty to generate one."/>
                <TextField id="node-fingerprint" field="tls_fingerprint" label="TLS fingerprint (optional)"
                    value=fingerprint errors autocomplete="off"
                    hint="printed by arch-node on first start; empty = trust the certificate the node presents now"/>
                <CheckField id="node-insecure" field="insecure_http" label="Plain HTTP node (--insecure-http)"
                    checked=insecure errors/>
                <div class="form-actions">
                    <SubmitButton label="Add node" working="Adding…" pending=Signal::derive(busy) testid="add-node" primary=true/>
                </div>
            </form>
            <Show when=move || insecure.get()>
                <p class="notice warn" data-testid="insecure-warning">
                    "Plain HTTP is not protected: the node's token and every user's password cross the network in clear, and anyone on the path can read or change them. Use it only on a network you trust."
                </p>
            </Show>
            <FormMessage errors/>
            <div aria-live="polite" data-testid="add-node-status">
                {move || match step.get() {
                    Step::Idle => ().into_any(),
                    Step::Checking => view! { <p class="notice">"Checking the connection to the node…"</p> }.into_any(),
                    Step::Adding => view! { <p class="notice">"Adding the node…"</p> }.into_any(),
                    Step::CheckFailed(_) => view! {
                        <div class="notice warn">
                            <p>"The connection check failed (see above). You can fix the values and try again, or add the node anyway: the manager keeps retrying and shows its status in the table."</p>
                            <button type="button" data-testid="add-node-anyway" on:click=move |_| submit(true)>"Add anyway"</button>
                        </div>
                    }.into_any(),
                    Step::Added { created, presented } => view! { <Added created=*created presented/> }.into_any(),
                }}
            </div>
        </section>
    }
}

/// Confirmation after adding: the certificate the node presented and the one pinned, and the
/// generated token (shown only this once).
#[component]
fn Added(created: CreatedNode, presented: Option<String>) -> impl IntoView {
    let CreatedNode { node, token } = created;
    let pinned = node.tls_fingerprint.clone();
    view! {
        <div class="notice ok" data-testid="node-added">
            <p>"Node " {node.name.clone()} " (" {node.host.clone()} ":" {node.http_port} ") was added."</p>
            {presented.map(|fp| view! {
                <p>
                    "The node presented certificate "
                    <Fingerprint value=fp testid="add-node-presented".to_owned()/>
                    ": compare it with the one arch-node printed."
                </p>
            })}
            {match (node.insecure_http, pinned) {
                (true, _) => view! {
                    <p>"Plain HTTP node: nothing is pinned and the channel is not protected."</p>
                }.into_any(),
                (false, Some(fp)) => view! {
                    <p>"Pinned certificate: " <Fingerprint value=fp testid="add-node-pinned".to_owned()/></p>
                }.into_any(),
                (false, None) => view! {
                    <p>"The node was not reached: its certificate is pinned at the first successful call."</p>
                }.into_any(),
            }}
            {token.map(|token| view! {
                <p>"Its generated token is shown only now. Start the node with it:"</p>
                <pre data-testid="node-token"><code>{format!("arch-node serve --token {token}")}</code></pre>
            })}
        </div>
    }
}
