//! Settings page (`/settings`): manager host, the four Shadowsocks mode ports (0 = mode off),
//! the fallback proxy URL, the traffic ratio, the private networks users may reach, the base of
//! subscription URLs and the time zone of usage resets. Messages appear beside the field they
//! concern.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::api::{get_settings, time_zones, update_settings};
use crate::components::{ErrorBox, FormErrors, FormMessage, SubmitButton, TextField};
use crate::model::SettingsView;
use crate::validate;

/// The settings page.
#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text="Settings"/>
        <h1>"Settings"</h1>
        <Settings/>
        <TimeZoneList/>
    }
}

/// The settings form, filled with the current settings.
#[cfg_attr(feature = "bundle-admin", island)]
#[cfg_attr(not(feature = "bundle-admin"), component)]
fn Settings() -> impl IntoView {
    let settings = Resource::new(|| (), |_| get_settings());
    view! {
        <Suspense fallback=|| view! { <p>"Loading settings…"</p> }>
            {move || settings.get().map(|r| match r {
                Ok(current) => view! { <SettingsForm current/> }.into_any(),
                Err(error) => view! { <ErrorBox error/> }.into_any(),
            })}
        </Suspense>
    }
}

/// Form fields as typed (strings until validated).
#[derive(Clone, Copy)]
struct Fields {
    host: RwSignal<String>,
    direct: RwSignal<String>,
    relay: RwSignal<String>,
    reverse: RwSignal<String>,
    remote: RwSignal<String>,
    proxy_url: RwSignal<String>,
    ratio: RwSignal<String>,
    networks: RwSignal<String>,
    sub_base: RwSignal<String>,
    time_zone: RwSignal<String>,
}

impl Fields {
    fn new(s: &SettingsView) -> Self {
        Self {
            host: RwSignal::new(s.host.clone()),
            direct: RwSignal::new(s.ss_direct_port.to_string()),
            relay: RwSignal::new(s.ss_relay_port.to_string()),
            reverse: RwSignal::new(s.ss_reverse_port.to_string()),
            remote: RwSignal::new(s.ss_remote_port.to_string()),
            proxy_url: RwSignal::new(s.proxy_url.clone()),
            ratio: RwSignal::new(s.traffic_ratio.to_string()),
            networks: RwSignal::new(s.allowed_private_networks.join(", ")),
            sub_base: RwSignal::new(s.subscription_url_base.clone()),
            time_zone: RwSignal::new(s.time_zone.clone()),
        }
    }

    fn set(&self, s: &SettingsView) {
        self.host.set(s.host.clone());
        self.direct.set(s.ss_direct_port.to_string());
        self.relay.set(s.ss_relay_port.to_string());
        self.reverse.set(s.ss_reverse_port.to_string());
        self.remote.set(s.ss_remote_port.to_string());
        self.proxy_url.set(s.proxy_url.clone());
        self.ratio.set(s.traffic_ratio.to_string());
        self.networks.set(s.allowed_private_networks.join(", "));
        self.sub_base.set(s.subscription_url_base.clone());
        self.time_zone.set(s.time_zone.clone());
    }

    /// Validates every field (first error wins) into the value to submit.
    fn parse(&self) -> Result<SettingsView, crate::AppError> {
        let port =
            |field, value: RwSignal<String>| validate::port(field, &value.get_untracked(), true);
        Ok(SettingsView {
            host: validate::host("host", &self.host.get_untracked())?,
            ss_direct_port: port("ss_direct_port", self.direct)?,
            ss_relay_port: port("ss_relay_port", self.relay)?,
            ss_reverse_port: port("ss_reverse_port", self.reverse)?,
            ss_remote_port: port("ss_remote_port", self.remote)?,
            proxy_url: validate::proxy_url(&self.proxy_url.get_untracked())?,
            traffic_ratio: validate::traffic_ratio(&self.ratio.get_untracked())?,
            allowed_private_networks: validate::networks(&self.networks.get_untracked())?,
            subscription_url_base: self.sub_base.get_untracked().trim().to_owned(),
            time_zone: rules::input::time_zone(&self.time_zone.get_untracked())?,
        })
    }
}

#[component]
fn SettingsForm(current: SettingsView) -> impl IntoView {
    let fields = Fields::new(&current);
    let errors = FormErrors::new();
    let saving = RwSignal::new(false);
    let saved = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        saved.set(false);
        let Some(values) = errors.check(fields.parse()) else {
            return;
        };
        saving.set(true);
        spawn_local(async move {
            match update_settings(values).await {
                Ok(stored) => {
                    fields.set(&stored);
                    saved.set(true);
                }
                Err(err) => errors.show(&err),
            }
            saving.set(false);
        });
    };
    let port_hint = "0 turns this mode off.";
    view! {
        <form class="card settings" novalidate on:submit=submit>
            <FormMessage errors/>
            <fieldset>
                <legend>"Manager"</legend>
                <TextField id="settings-host" field="host" label="Public host" value=fields.host errors
                    hint="Host name or IP that users' links point at."/>
            </fieldset>
            <fieldset>
                <legend>"Shadowsocks ports"</legend>
                <TextField id="settings-direct" field="ss_direct_port" label="Direct port" value=fields.direct
                    errors inputmode="numeric" hint=port_hint/>
                <TextField id="settings-relay" field="ss_relay_port" label="Relay port" value=fields.relay
                    errors inputmode="numeric" hint=port_hint/>
                <TextField id="settings-reverse" field="ss_reverse_port" label="Reverse port" value=fields.reverse
                    errors inputmode="numeric" hint=port_hint/>
                <TextField id="settings-remote" field="ss_remote_port" label="Remote port (on nodes)"
                    value=fields.remote errors inputmode="numeric" hint=port_hint/>
            </fieldset>
            <fieldset>
                <legend>"Traffic"</legend>
                <TextField id="settings-proxy" field="proxy_url" label="Fallback proxy URL" value=fields.proxy_url
                    errors autocomplete="off"
                    hint="socks5://host:port or http://host:port, used when a node cannot be reached directly. Empty = none."/>
                <TextField id="settings-ratio" field="traffic_ratio" label="Traffic ratio" value=fields.ratio
                    errors inputmode="decimal" hint="Multiplies the usage counted for users, e.g. 1 or 1.5."/>
                <TextField id="settings-networks" field="allowed_private_networks"
                    label="Private networks users may reach" value=fields.networks errors autocomplete="off"
                    hint="CIDRs, comma-separated, e.g. 10.20.0.0/16. Empty = users cannot reach loopback, private, link-local, CGNAT or multicast addresses (recommended)."/>
            </fieldset>
            <fieldset>
                <legend>"Users"</legend>
                <TextField id="settings-sub-base" field="subscription_url_base" label="Subscription URL base"
                    value=fields.sub_base errors autocomplete="off" inputmode="url"
                    hint="Where users' subscription URLs point, e.g. https://sub.example.com behind a reverse proxy. Empty = this panel's own address."/>
                <TextField id="settings-time-zone" field="time_zone" label="Time zone of usage resets"
                    value=fields.time_zone errors autocomplete="off" list="time-zones"
                    hint="An IANA name such as UTC, Europe/Berlin or America/Santiago: daily, weekly, monthly and yearly resets fall at midnight there."/>
            </fieldset>
            <div class="form-actions">
                <SubmitButton label="Save settings" working="Saving…" pending=saving testid="save-settings" primary=true/>
                <span class="ok-text" aria-live="polite" data-testid="settings-saved">
                    {move || saved.get().then_some("Saved.")}
                </span>
            </div>
        </form>
    }
}

/// `<datalist id="time-zones">`: the zone names the manager accepts, suggested as the time zone
/// field is typed into. Rendered on the server, outside the form's island (the field refers to
/// it by id).
#[component]
fn TimeZoneList() -> impl IntoView {
    let zones = Resource::new(|| (), |_| time_zones());
    view! {
        <datalist id="time-zones" data-testid="time-zones">
            <Suspense>
                {move || zones.get().and_then(Result::ok).map(|names| {
                    names.into_iter().map(|n| view! { <option value=n/> }).collect_view()
                })}
            </Suspense>
        </datalist>
    }
}
