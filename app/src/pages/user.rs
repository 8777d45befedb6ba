//! A user's page (`/users/{id}`): state, quota and live usage, and one client link per enabled
//! mode, each with its QR code (rendered on the server) and a copy button; the subscription URL,
//! its QR code, the profile page link and the two-step "Regenerate subscription URL".
//! Test ids: `user-detail`, `user-detail-usage`, `link-{mode}[-{node}]`, `…-url`, `…-qr`, `…-copy`,
//! `subscription-url`, `subscription-qr`, `subscription-page`, `subscription-rotate[-confirm]`,
//! `user-detail-expiry`, `access-save`, `access-saved`. The access form sets the expiry (a UTC
//! date, or days from the first use). The usage history chart is [`crate::chart`]'s.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{
    load_user_detail, load_user_subscription, reset_user_usage, rotate_subscription,
    update_user_access, update_user_reset, UserSubscription,
};
use crate::chart::{UsageChart, UsageHistory};
use crate::components::{
    ConfirmAction, ErrorBox, FormErrors, FormMessage, SubmitButton, TextField,
};
use crate::error::AppError;
use crate::format;
use crate::live::{self, LiveState};
use crate::model::{LinkView, ResetStrategy, UsageOf, UserAccess, UserDetail, UserView};

/// The user page (`id`: from the URL, `None` when it is not a number).
#[component]
pub fn UserPage() -> impl IntoView {
    let id = super::id_param();
    view! {
        <Title text="User"/>
        <p><a href="/users">"← All users"</a></p>
        <User id/>
    }
}

/// Everything about user `id`, reloaded when users change.
#[cfg_attr(feature = "bundle-user", island)]
#[cfg_attr(not(feature = "bundle-user"), component)]
fn User(id: Option<i64>) -> impl IntoView {
    let live = live::use_live();
    let detail = Resource::new(
        move || (id, live.users_version.get()),
        |(id, _)| async move {
            match id {
                Some(id) => load_user_detail(id).await,
                None => Err(AppError::NotFound("this user".to_owned())),
            }
        },
    );
    // Owned by the page, not by the cards: a live reload of the user re-renders the cards, and
    // the outcome of a save or a regeneration must outlive that.
    let actions = PageActions::new(live);
    let history = UsageHistory::new(id.map(UsageOf::User), move || {
        let usage = id.and_then(|id| live.users.with(|m| m.get(&id).map(|u| u.usage_bytes)));
        (usage, live.users_version.get())
    });
    let subscription = Resource::new(
        move || live.users_version.get(),
        move |_| async move {
            match id {
                Some(id) => load_user_subscription(id).await,
                None => Err(AppError::NotFound("this user".to_owned())),
            }
        },
    );
    view! {
        <Transition fallback=|| view! { <p>"Loading the user…"</p> }>
            {move || detail.get().map(|r| match r {
                Ok(d) => view! { <UserSummary detail=d actions history subscription/> }.into_any(),
                Err(error) => view! { <h1>"User"</h1><ErrorBox error/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn UserSummary(
    detail: UserDetail,
    actions: PageActions,
    history: UsageHistory,
    subscription: Resource<Result<UserSubscription, AppError>>,
) -> impl IntoView {
    let live = live::use_live();
    let user = detail.user;
    let user_id = user.id;
    let name = user.name.clone();
    let expiry = expiry_text(&user);
    let access = user.clone();
    let current = live.user(user);
    let links = detail.links;
    let no_links = links.is_empty();
    view! {
        <h1 data-testid="user-detail">{format!("User {name}")}</h1>
        <dl class="facts">
            <dt>"Enabled"</dt>
            <dd data-testid="user-detail-enabled">
                {move || current.with(|u| match (u.enabled, &u.disabled_reason) {
                    (true, _) => "yes".to_owned(),
                    (false, Some(why)) => format!("no ({why})"),
                    (false, None) => "no".to_owned(),
                })}
            </dd>
            <dt>"Quota"</dt>
            <dd>{move || current.with(|u| format::quota(u.quota_bytes))}" GB"</dd>
            <dt>"Usage"</dt>
            <dd data-testid="user-detail-usage">{move || current.with(|u| format::gb(u.usage_bytes))}" GB"</dd>
            <dt>"Access until"</dt>
            <dd data-testid="user-detail-expiry">{expiry}</dd>
        </dl>
        <AccessForm user=access.clone() actions/>
        <ResetForm user=access actions/>
        <UsageChart history/>
        <h2>"Client links"</h2>
        <p class="hint">
            "Each link holds this user's password: share it only with them. Any Shadowsocks client "
            "that reads ss:// links (or scans the QR code) can use it."
        </p>
        {no_links.then(|| view! {
            <p class="empty" data-testid="links-empty">
                "No mode is enabled yet: set a port for at least one mode on the "
                <a href="/settings">"settings page"</a>"."
            </p>
        })}
        <div class="links">
            {links.into_iter().map(|link| view! { <LinkCard link/> }).collect_view()}
        </div>
        <SubscriptionCard id=user_id actions loaded=subscription/>
    }
}

/// An action's outcome, with the user it was for.
type ForUser<T> = (i64, Result<T, AppError>);

/// The page's actions and their outcomes, each tagged with the user it was for: the access
/// form's save ("Saved." shows until the next submit) and "Regenerate subscription URL"
/// (asking for confirmation, then the new URL or the error).
#[derive(Clone, Copy)]
struct PageActions {
    save_access: Action<(i64, UserAccess), (i64, Result<UserView, AppError>)>,
    access_saved: RwSignal<Option<i64>>,
    rotate: Action<i64, (i64, Result<UserSubscription, AppError>)>,
    save_reset: Action<(i64, ResetStrategy, i32), ForUser<UserView>>,
    reset_saved: RwSignal<Option<i64>>,
    reset_now: Action<i64, (i64, Result<UserView, AppError>)>,
}

impl PageActions {
    fn new(live: LiveState) -> Self {
        let save_access = Action::new(|(id, access): &(i64, UserAccess)| {
            let (id, access) = (*id, *access);
            async move { (id, update_user_access(id, access).await) }
        });
        let access_saved = RwSignal::new(None);
        Effect::new(move |_| {
            if let Some((id, Ok(_))) = save_access.value().get() {
                access_saved.set(Some(id));
                live.reload_users();
            }
        });
        let rotate = Action::new(|id: &i64| {
            let id = *id;
            async move { (id, rotate_subscription(id).await) }
        });
        let save_reset = Action::new(|(id, strategy, day): &(i64, ResetStrategy, i32)| {
            let (id, strategy, day) = (*id, *strategy, *day);
            async move { (id, update_user_reset(id, strategy, day).await) }
        });
        let reset_saved = RwSignal::new(None);
        Effect::new(move |_| {
            if let Some((id, Ok(_))) = save_reset.value().get() {
                reset_saved.set(Some(id));
                live.reload_users();
            }
        });
        let reset_now = Action::new(|id: &i64| {
            let id = *id;
            async move { (id, reset_user_usage(id).await) }
        });
        Effect::new(move |_| {
            if let Some((_, Ok(_))) = reset_now.value().get() {
                live.reload_users();
            }
        });
        Self {
            save_access,
            access_saved,
            rotate,
            save_reset,
            reset_saved,
            reset_now,
        }
    }

    /// The outcome of the last regeneration of user `id`, if any.
    fn rotated(&self, id: i64) -> Option<Result<UserSubscription, AppError>> {
        self.rotate
            .value()
            .get()
            .and_then(|(of, r)| (of == id).then_some(r))
    }
}

/// The user's subscription URL, its QR code, the profile page, and "Regenerate" (two steps:
/// the first click asks, the second replaces the secret; the old URL then answers 404).
#[component]
fn SubscriptionCard(
    id: i64,
    actions: PageActions,
    loaded: Resource<Result<UserSubscription, AppError>>,
) -> impl IntoView {
    let PageActions { rotate, .. } = actions;
    view! {
        <section class="card" aria-labelledby="subscription-title" data-testid="subscription">
            <h2 id="subscription-title">"Subscription"</h2>
            <p class="hint">
                "One URL for every client app: it lists this user's servers and keeps them current. "
                "The profile page shows the user their usage and links."
            </p>
            <Transition fallback=|| view! { <p>"Loading the subscription…"</p> }>
                {move || {
                    let rotated = actions.rotated(id).and_then(Result::ok);
                    let current = rotated.map(Ok).or_else(|| loaded.get());
                    current.map(|r| match r {
                        Ok(sub) => view! {
                            <label for="subscription-url" class="visually-hidden">"Subscription URL"</label>
                            <input id="subscription-url" type="text" readonly value=sub.url.clone()
                                data-testid="subscription-url" class="link-url" on:focus=|ev| select_target(&ev)/>
                            <p><a href=sub.page_url.clone() data-testid="subscription-page" rel="noreferrer">"Open the profile page"</a></p>
                            {sub.qr_svg.map(|svg| view! {
                                <div class="qr" role="img" aria-label="QR code of the subscription URL"
                                    data-testid="subscription-qr" inner_html=svg></div>
                            })}
                        }.into_any(),
                        Err(error) => view! { <ErrorBox error/> }.into_any(),
                    })
                }}
            </Transition>
            <div class="form-actions">
                <ConfirmAction label="Regenerate subscription URL"
                    question="The current URL stops working at once. Make a new one?".to_owned()
                    yes="Yes, regenerate" working="Regenerating…" danger=true testid="subscription-rotate"
                    on_confirm=Callback::new(move |()| { rotate.dispatch(id); }) pending=rotate.pending()/>
                <span aria-live="polite" data-testid="subscription-rotate-status">
                    {move || if rotate.pending().get() {
                        Some("Regenerating…".to_owned())
                    } else {
                        match actions.rotated(id) {
                            Some(Ok(_)) => Some("A new URL was made; the old one no longer works.".to_owned()),
                            Some(Err(e)) => Some(e.to_string()),
                            None => None,
                        }
                    }}
                </span>
            </div>
        </section>
    }
}

#[component]
fn LinkCard(link: LinkView) -> impl IntoView {
    let key = match link.node_id {
        Some(node) => format!("link-{}-{node}", link.mode),
        None => format!("link-{}", link.mode),
    };
    let t = {
        let key = key.clone();
        move |suffix: &str| format!("{key}-{suffix}")
    };
    let input_id = t("url");
    let copied = RwSignal::new(None::<&'static str>);
    let url = link.url.clone();
    let copy = move |_| {
        let url = url.clone();
        copied.set(None);
        leptos::task::spawn_local(async move {
            copied.set(Some(match copy_to_clipboard(url).await {
                Ok(()) => "Copied.",
                Err(why) => why,
            }));
        });
    };
    let qr_label = format!("QR code of the {} link", link.label);
    view! {
        <section class="card link-card" data-testid=key.clone() aria-label=link.label.clone()>
            <h3>{link.label.clone()}</h3>
            <label for=input_id.clone() class="visually-hidden">{format!("{} link", link.label)}</label>
            <input id=input_id.clone() type="text" readonly value=link.url.clone() data-testid=t("url")
                class="link-url" on:focus=|ev| select_target(&ev)/>
            <div class="form-actions">
                <button type="button" data-testid=t("copy") on:click=copy>"Copy link"</button>
                <span class="ok-text" aria-live="polite" data-testid=t("copied")>{move || copied.get()}</span>
            </div>
            {link.qr_svg.map(|svg| view! {
                <div class="qr" role="img" aria-label=qr_label data-testid=t("qr") inner_html=svg></div>
            })}
        </section>
    }
}

/// Selects the text of the input an event came from (so it can be copied by hand).
pub(crate) fn select_target(ev: &leptos::ev::FocusEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        {
            input.select();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

/// Writes `text` to the clipboard. `Err` carries what to tell the user: the browser offers no
/// clipboard API (plain HTTP outside localhost) or refused the write.
pub(crate) async fn copy_to_clipboard(text: String) -> Result<(), &'static str> {
    const BY_HAND: &str = "Copying is not allowed here: select the link and copy it.";
    #[cfg(feature = "hydrate")]
    {
        let window = web_sys::window().ok_or(BY_HAND)?;
        let navigator = window.navigator();
        let available = js_sys::Reflect::get(&navigator, &"clipboard".into())
            .is_ok_and(|c| !c.is_undefined() && !c.is_null());
        if !available {
            return Err(BY_HAND);
        }
        let promise = navigator.clipboard().write_text(&text);
        wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map(|_| ())
            .map_err(|_| BY_HAND)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = text;
        Err(BY_HAND)
    }
}

/// The expiry in words: a UTC time, a first-use period not started yet, or "no expiry".
fn expiry_text(u: &UserView) -> String {
    match (u.expire_at, u.expire_after_first_use) {
        (Some(at), _) => utc(at),
        (None, Some(ms)) => format!("{} days from the first use", ms / rules::input::DAY_MS),
        (None, None) => "no expiry".to_owned(),
    }
}

/// `YYYY-MM-DD HH:MM UTC`, as the access form reads it back.
fn utc(at_ms: i64) -> String {
    let iso = format::iso8601(at_ms);
    format!(
        "{} UTC",
        iso.get(..16).unwrap_or(&iso).replacen('T', " ", 1)
    )
}

/// Sets the expiry: a UTC date (and time), and/or days of access from the first use. Saving
/// reloads the user, whose state the manager recomputes at once (a later expiry enables a user
/// disabled because the previous one passed).
#[component]
fn AccessForm(user: UserView, actions: PageActions) -> impl IntoView {
    let id = user.id;
    let errors = FormErrors::new();
    let until = RwSignal::new(
        user.expire_at
            .map(utc)
            .map(|s| s.trim_end_matches(" UTC").to_owned())
            .unwrap_or_default(),
    );
    let days = RwSignal::new(
        user.expire_after_first_use
            .map(|ms| (ms / rules::input::DAY_MS).to_string())
            .unwrap_or_default(),
    );
    let PageActions {
        save_access: save,
        access_saved: saved,
        ..
    } = actions;
    Effect::new(move |_| {
        if let Some((of, Err(err))) = save.value().get() {
            if of == id {
                errors.show(&err);
            }
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        saved.set(None);
        let read = rules::input::expire_at_text(&until.get_untracked()).and_then(|expire_at| {
            Ok(UserAccess {
                expire_at,
                expire_after_first_use: rules::input::access_days_text(&days.get_untracked())?,
            })
        });
        if let Some(access) = errors.check(read.map_err(AppError::from)) {
            save.dispatch((id, access));
        }
    };
    view! {
        <section class="card" aria-labelledby="access-title">
            <h2 id="access-title">"Access period"</h2>
            <form class="inline-form" novalidate on:submit=submit>
                <TextField id="access-until" field="expire_at" label="Expires (UTC)" value=until errors
                    autocomplete="off" hint="YYYY-MM-DD or YYYY-MM-DD HH:MM; empty = never."/>
                <TextField id="access-days" field="expire_after_first_use" label="Days from first use"
                    value=days errors inputmode="numeric"
                    hint="Starts with the first byte the user sends; empty = none."/>
                <div class="form-actions">
                    <SubmitButton label="Save access period" working="Saving…" pending=save.pending()
                        testid="access-save" primary=true/>
                </div>
            </form>
            <FormMessage errors/>
            <p aria-live="polite" data-testid="access-saved">
                {move || (saved.get() == Some(id)).then_some("Saved.")}
            </p>
        </section>
    }
}

/// When the usage is zeroed on its own (strategy, and the day of a monthly reset), the next
/// scheduled reset, and "Reset usage now" (which also enables a user the quota disabled).
#[component]
fn ResetForm(user: UserView, actions: PageActions) -> impl IntoView {
    let id = user.id;
    let errors = FormErrors::new();
    let strategy = RwSignal::new(user.reset_strategy);
    let day = RwSignal::new(user.reset_day.to_string());
    let next = match user.next_reset_at {
        Some(at) => utc(at),
        None => "none".to_owned(),
    };
    let PageActions {
        save_reset: save,
        reset_saved: saved,
        reset_now,
        ..
    } = actions;
    Effect::new(move |_| {
        if let Some((of, Err(err))) = save.value().get() {
            if of == id {
                errors.show(&err);
            }
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        saved.set(None);
        let read = day.get_untracked().trim().parse::<i32>().unwrap_or(0);
        if let Some(day) = errors.check(rules::input::reset_day(read).map_err(AppError::from)) {
            save.dispatch((id, strategy.get_untracked(), day));
        }
    };
    let now_status = move || {
        if reset_now.pending().get() {
            return Some("Resetting…".to_owned());
        }
        match reset_now.value().get() {
            Some((of, Ok(_))) if of == id => Some("The usage was reset.".to_owned()),
            Some((of, Err(e))) if of == id => Some(e.to_string()),
            _ => None,
        }
    };
    view! {
        <section class="card" aria-labelledby="reset-title">
            <h2 id="reset-title">"Usage resets"</h2>
            <form class="inline-form" novalidate on:submit=submit>
                <div class="field">
                    <label for="reset-strategy">"Reset the usage"</label>
                    <select id="reset-strategy" name="reset_strategy" data-testid="reset-strategy"
                        on:change=move |ev| {
                            if let Some(s) = ResetStrategy::parse(&event_target_value(&ev)) {
                                strategy.set(s);
                            }
                        }>
                        {ResetStrategy::ALL.into_iter().map(|s| view! {
                            <option value=s.as_str() selected=move || strategy.get() == s>{s.label()}</option>
                        }).collect_view()}
                    </select>
                </div>
                <TextField id="reset-day" field="reset_day" label="Day of the month" value=day errors
                    inputmode="numeric" hint="For monthly resets: 1–31 (the last day in shorter months)."/>
                <div class="form-actions">
                    <SubmitButton label="Save resets" working="Saving…" pending=save.pending()
                        testid="reset-save" primary=true/>
                </div>
            </form>
            <FormMessage errors/>
            <p aria-live="polite" data-testid="reset-saved">
                {move || (saved.get() == Some(id)).then_some("Saved.")}
            </p>
            <p>"Next reset: "<span data-testid="reset-next">{next}</span>" (at midnight in the resets' time zone)"</p>
            <div class="form-actions">
                <button type="button" data-testid="reset-now"
                    disabled=move || reset_now.pending().get()
                    on:click=move |_| { reset_now.dispatch(id); }>"Reset usage now"</button>
                <span aria-live="polite" data-testid="reset-now-status">{now_status}</span>
            </div>
        </section>
    }
}
