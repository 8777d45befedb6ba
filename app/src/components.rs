//! Small building blocks shared by the pages: labelled form fields with their error messages,
//! per-form error state, status badges, timestamps and the inline delete confirmation.

use std::collections::HashMap;

use leptos::prelude::*;

use crate::error::{AppError, FORM};
use crate::format;

/// Error messages of one form, keyed by field name ([`FORM`] for the form as a whole).
#[derive(Clone, Copy)]
pub struct FormErrors(RwSignal<HashMap<String, String>>);

impl Default for FormErrors {
    fn default() -> Self {
        Self::new()
    }
}

impl FormErrors {
    pub fn new() -> Self {
        Self(RwSignal::new(HashMap::new()))
    }

    /// The message for `field`, reactively.
    pub fn get(&self, field: &str) -> Option<String> {
        self.0.with(|m| m.get(field).cloned())
    }

    /// Replaces all messages with the one carried by `err` (beside its field, or for the form).
    /// An ended session sends the browser to the sign-in page.
    pub fn show(&self, err: &AppError) {
        if err.is_unauthorized() {
            crate::live::go_to_login();
        }
        let field = err.field().unwrap_or(FORM).to_owned();
        self.0.set(HashMap::from([(field, err.to_string())]));
    }

    /// Removes every message.
    pub fn clear(&self) {
        self.0.set(HashMap::new());
    }

    /// Runs a client-side check; shows its error and returns `None` when it fails.
    pub fn check<T>(&self, result: Result<T, AppError>) -> Option<T> {
        result.map_err(|e| self.show(&e)).ok()
    }
}

/// A labelled text-like `<input>` with an optional hint and its error message.
#[component]
pub fn TextField(
    /// Unique element id (also prefixes the hint and error ids).
    #[prop(into)]
    id: String,
    /// Field name: the `name` attribute and the key of its error message.
    field: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    errors: FormErrors,
    /// `type` attribute (`text`, `password`, `number`, …).
    #[prop(default = "text")]
    kind: &'static str,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(optional)] required: bool,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
    #[prop(optional)] minlength: Option<usize>,
    /// Keep the label for assistive technology only (e.g. inside a table row whose column
    /// header already says what the input is).
    #[prop(optional)]
    hide_label: bool,
    /// The id of a `<datalist>` of suggested values.
    #[prop(optional)]
    list: Option<&'static str>,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    let hint_id = hint.map(|_| format!("{id}-hint"));
    let described_by = match &hint_id {
        Some(h) => format!("{h} {error_id}"),
        None => error_id.clone(),
    };
    let error = move || errors.get(field);
    view! {
        <div class="field">
            <label for=id.clone() class:visually-hidden=hide_label>{label}</label>
            <input
                id=id.clone()
                name=field
                type=kind
                bind:value=value
                required=required
                autocomplete=autocomplete
                inputmode=inputmode
                minlength=minlength
                list=list
                aria-invalid=move || if error().is_some() { "true" } else { "false" }
                aria-describedby=described_by
            />
            {hint.map(|h| view! { <p class="hint" id=hint_id.clone()>{h}</p> })}
            <p class="field-error" id=error_id aria-live="polite">{error}</p>
        </div>
    }
}

/// A labelled checkbox with its error message.
#[component]
pub fn CheckField(
    #[prop(into)] id: String,
    field: &'static str,
    label: &'static str,
    checked: RwSignal<bool>,
    errors: FormErrors,
    /// Keep the label for assistive technology only.
    #[prop(optional)]
    hide_label: bool,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    view! {
        <div class="field field-check">
            <input id=id.clone() name=field type="checkbox" bind:checked=checked aria-describedby=error_id.clone()/>
            <label for=id class:visually-hidden=hide_label>{label}</label>
            <p class="field-error" id=error_id aria-live="polite">{move || errors.get(field)}</p>
        </div>
    }
}

/// The message that belongs to the whole form (not to one field), if any.
#[component]
pub fn FormMessage(errors: FormErrors) -> impl IntoView {
    view! {
        <p class="form-error" role="alert" data-testid="form-error">
            {move || errors.get(FORM)}
        </p>
    }
}

/// A push/pull status badge: `""` reads "processing".
#[component]
pub fn StatusBadge(
    #[prop(into)] status: Signal<String>,
    #[prop(into)] testid: String,
) -> impl IntoView {
    let label = move || {
        status.with(|s| {
            if s.is_empty() {
                "processing".to_owned()
            } else {
                s.clone()
            }
        })
    };
    view! {
        <span class=move || format!("status status-{}", label()) data-testid=testid>
            {label}
        </span>
    }
}

/// A timestamp shown as relative time, with the ISO form in `title` and `datetime`.
#[component]
pub fn Timestamp(
    #[prop(into)] at_ms: Signal<i64>,
    now_ms: Signal<i64>,
    #[prop(into)] testid: String,
) -> impl IntoView {
    let iso = move || format::iso8601(at_ms.get());
    view! {
        <time datetime=iso title=iso data-testid=testid>
            {move || format::relative(now_ms.get(), at_ms.get())}
        </time>
    }
}

/// A form's submit button. While its action runs it is disabled, says what is happening
/// (`working`, e.g. `Saving…`) and is marked `aria-busy`; otherwise it shows `label`. One home
/// for the pending state of every form in the panel.
#[component]
pub fn SubmitButton(
    label: &'static str,
    working: &'static str,
    #[prop(into)] pending: Signal<bool>,
    /// `data-testid`, when the tests need one.
    #[prop(into, optional)]
    testid: Option<String>,
    /// Styled as the form's main action.
    #[prop(optional)]
    primary: bool,
) -> impl IntoView {
    view! {
        <button type="submit" class=primary.then_some("primary") data-testid=testid
            disabled=move || pending.get() aria-busy=move || pending.get().then_some("true")>
            {move || if pending.get() { working } else { label }}
        </button>
    }
}

/// "Delete" button that asks for confirmation inline before calling `on_confirm`.
#[component]
pub fn ConfirmDelete(
    /// What is deleted, e.g. `node 3 (10.0.0.1:8080)`.
    #[prop(into)]
    what: String,
    /// Prefix for `data-testid`s: `{testid}-delete`, `{testid}-confirm`.
    #[prop(into)]
    testid: String,
    on_confirm: Callback<()>,
    #[prop(into)] pending: Signal<bool>,
) -> impl IntoView {
    view! {
        <ConfirmAction label="Delete" aria_label=format!("Delete {what}")
            question=format!("Delete {what}?") yes="Yes, delete" working="Deleting…" danger=true
            testid=format!("{testid}-delete") confirm_testid=format!("{testid}-confirm")
            cancel_testid=format!("{testid}-cancel") on_confirm pending/>
    }
}

/// A button whose action runs only after an inline "are you sure?" step: the question with
/// "yes" and "cancel" replaces it, the "yes" button takes the focus, Escape or "cancel" closes the
/// question and gives the focus back. While the action runs the button is disabled, marked
/// `aria-busy` and says `working`.
#[component]
pub fn ConfirmAction(
    /// The button's text, e.g. `Reset usage`.
    label: &'static str,
    /// The button's accessible name when `label` alone is ambiguous (e.g. `Delete node 3`).
    #[prop(into, optional)]
    aria_label: Option<String>,
    /// The question shown in the confirmation step, e.g. `Reset the usage of node 2?`.
    #[prop(into)]
    question: Signal<String>,
    /// The confirming button's text, e.g. `Yes, reset`.
    yes: &'static str,
    /// The button's text while the action runs, e.g. `Resetting…`.
    working: &'static str,
    /// Styled as a destructive action.
    #[prop(optional)]
    danger: bool,
    /// `data-testid` of the button; the confirming and cancelling buttons get `{testid}-confirm`
    /// and `{testid}-cancel` unless given.
    #[prop(into)]
    testid: String,
    #[prop(into, optional)] confirm_testid: Option<String>,
    #[prop(into, optional)] cancel_testid: Option<String>,
    on_confirm: Callback<()>,
    #[prop(into)] pending: Signal<bool>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    // Set when the question closes, so the button gets the focus back (never on first render).
    let refocus = RwSignal::new(false);
    let ask_ref = NodeRef::<leptos::html::Button>::new();
    let yes_ref = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |_| {
        if let Some(button) = yes_ref.get() {
            let _ = button.focus();
        }
    });
    Effect::new(move |_| {
        if let Some(button) = ask_ref.get() {
            if refocus.get_untracked() {
                refocus.set(false);
                let _ = button.focus();
            }
        }
    });
    let close = move || {
        refocus.set(true);
        asking.set(false);
    };
    let yes_id = confirm_testid.unwrap_or_else(|| format!("{testid}-confirm"));
    let no_id = cancel_testid.unwrap_or_else(|| format!("{testid}-cancel"));
    let aria_label = aria_label.unwrap_or_else(|| label.to_owned());
    let group_label = move || format!("Confirm: {}", question.get());
    view! {
        <Show
            when=move || asking.get()
            fallback=move || {
                view! {
                    <button type="button" node_ref=ask_ref class=danger.then_some("danger-outline")
                        data-testid=testid.clone() aria-label=aria_label.clone()
                        disabled=move || pending.get() aria-busy=move || pending.get().then_some("true")
                        on:click=move |_| asking.set(true)>
                        {move || if pending.get() { working } else { label }}
                    </button>
                }
            }
        >
            <span class="confirm" role="group" aria-label=group_label
                on:keydown=move |ev| if ev.key() == "Escape" { close() }>
                <span>{move || question.get()}</span>
                <button type="button" node_ref=yes_ref class=if danger { "danger" } else { "primary" }
                    data-testid=yes_id.clone() disabled=move || pending.get()
                    on:click=move |_| { on_confirm.run(()); close(); }>
                    {yes}
                </button>
                <button type="button" data-testid=no_id.clone() on:click=move |_| close()>
                    "Cancel"
                </button>
            </span>
        </Show>
    }
}

/// A full-width error box for errors that replace a page's content (e.g. a failed list load).
#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    if error.is_unauthorized() {
        crate::live::go_to_login();
    }
    view! { <p class="form-error" role="alert">{error.to_string()}</p> }
}

/// A labelled choice of administrator role (owner, operator, viewer) bound to `role`.
#[component]
pub fn RoleSelect(
    /// The `<select>`'s id (and, with `-select`, nothing else: the label points at it).
    #[prop(into)]
    id: String,
    #[prop(into)] label: String,
    role: RwSignal<rules::Role>,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <select id=id.clone() data-testid=id on:change=move |ev| {
                if let Some(r) = rules::Role::parse(&event_target_value(&ev)) {
                    role.set(r);
                }
            }>
                {rules::Role::ALL.into_iter().map(|r| view! {
                    <option value=r.as_str() selected=move || role.get() == r>{role_label(r)}</option>
                }).collect_view()}
            </select>
        </div>
    }
}

/// What a role is called in the panel, with what it may do.
pub fn role_label(role: rules::Role) -> &'static str {
    match role {
        rules::Role::Owner => "Owner: everything",
        rules::Role::Operator => "Operator: users and nodes",
        rules::Role::Viewer => "Viewer: read only",
    }
}
