//! The add-node form of the nodes page: checks the connection (`check_node`) before adding, shows
//! why a check failed (unreachable, wrong token) with an "add anyway" option, and shows a
//! generated token once.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{add_node, check_node};
use crate::components::{FormErrors, FormMessage, TextField};
use crate::error::AppError;
use crate::model::{CreatedNode, NodeForm};
use crate::validate;

/// Where the add-node flow is.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Idle,
    Checking,
    Adding,
    /// The check failed; the admin may still add the node.
    CheckFailed(AppError),
    Added(CreatedNode),
}

/// The "Add node" form. `on_added` runs after a node was saved.
#[component]
pub fn AddNodeForm(on_added: Callback<()>) -> impl IntoView {
    let errors = FormErrors::new();
    let host = RwSignal::new(String::new());
    let port = RwSignal::new(String::new());
    let token = RwSignal::new(String::new());
    let step = RwSignal::new(Step::Idle);

    let submit = move |skip_check: bool| {
        errors.clear();
        let form = validate::host("host", &host.get_untracked()).and_then(|host| {
            let http_port = validate::port("http_port", &port.get_untracked(), false)?;
            let http_token = validate::node_token(&token.get_untracked())?;
            Ok(NodeForm {
                host,
                http_port,
                http_token,
            })
        });
        let Some(form) = errors.check(form) else {
            step.set(Step::Idle);
            return;
        };
        spawn_local(async move {
            if !skip_check {
                step.set(Step::Checking);
                if let Err(err) = check_node(form.clone()).await {
                    errors.show(&err);
                    step.set(Step::CheckFailed(err));
                    return;
                }
            }
            step.set(Step::Adding);
            match add_node(form).await {
                Ok(created) => {
                    host.set(String::new());
                    port.set(String::new());
                    token.set(String::new());
                    step.set(Step::Added(created));
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
                <TextField id="node-host" field="host" label="Host" value=host errors required=true
                    hint="Host name or IP address of the node."/>
                <TextField id="node-port" field="http_port" label="HTTP port" value=port errors required=true
                    inputmode="numeric" hint="The port of the node API (arch-node serve --listen)."/>
                <TextField id="node-token" field="http_token" label="Token (optional)" value=token errors
                    autocomplete="off" hint="Leave empty to generate one."/>
                <div class="form-actions">
                    <button type="submit" class="primary" data-testid="add-node" disabled=busy>"Add node"</button>
                </div>
            </form>
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
                    Step::Added(created) => view! { <Added created/> }.into_any(),
                }}
            </div>
        </section>
    }
}

/// Confirmation after adding, with the generated token (shown only this once).
#[component]
fn Added(created: CreatedNode) -> impl IntoView {
    let CreatedNode { node, token } = created;
    view! {
        <div class="notice ok" data-testid="node-added">
            <p>"Node " {node.id} " (" {node.host.clone()} ":" {node.http_port} ") was added."</p>
            {token.map(|token| view! {
                <p>"Its generated token is shown only now. Start the node with it:"</p>
                <pre data-testid="node-token"><code>{format!("arch-node serve --token {token}")}</code></pre>
            })}
        </div>
    }
}
