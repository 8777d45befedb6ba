//! The dashboard (`/`, the landing page after sign-in): users by state and disable reason,
//! traffic today and this month (in the settings' time zone), node health, all users' traffic per
//! hour over the last 24 hours as a server-rendered SVG chart, and the last config pushes.
//!
//! Rendered completely on the server; after hydration it is loaded again (at most once per
//! [`REFRESH_MS`]) whenever a live event says users' usage, a user or node list, a node's
//! health or push outcome, or the settings changed, so the numbers and the chart move without a
//! reload.
//!
//! Test ids: `dash-users-total`, `dash-users-active`, `dash-users-disabled-{reason}`,
//! `dash-traffic-today`, `dash-traffic-month` (both with `data-bytes`), `dash-nodes-total`,
//! `dash-nodes-healthy`, `dash-nodes-unhealthy`, `dash-nodes-drift`, `dash-chart`,
//! `dash-chart-total`, `dash-bar` (with `data-at` and `data-bytes`), `dash-push-{node id}` with
//! `-status`, `-version` and `-error` inside, `dash-pushes-empty`.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::load_dashboard;
use crate::components::{ErrorBox, StatusBadge, Timestamp};
use crate::format;
use crate::live::{self, LiveState};
use crate::model::{DashboardView, PushView, UsageSeries};

/// The shortest time between two live reloads of the dashboard, in ms.
pub const REFRESH_MS: u64 = 1_000;

/// The dashboard page.
#[component]
pub fn DashboardPage() -> impl IntoView {
    view! {
        <Title text="Dashboard"/>
        <h1>"Dashboard"</h1>
        <Dashboard/>
    }
}

/// Everything below the title, reloaded live.
#[cfg_attr(feature = "bundle-dashboard", island)]
#[cfg_attr(not(feature = "bundle-dashboard"), component)]
fn Dashboard() -> impl IntoView {
    let live = live::use_live();
    let reloads = live_reloads(live);
    let dashboard = Resource::new(move || reloads.get(), |_| load_dashboard());
    view! {
        <Transition fallback=|| view! { <p>"Loading the dashboard…"</p> }>
            {move || dashboard.get().map(|r| match r {
                Ok(d) => view! { <Overview d/> }.into_any(),
                Err(error) => view! { <ErrorBox error/> }.into_any(),
            })}
        </Transition>
    }
}

/// A counter bumped (at most once per [`REFRESH_MS`]) after the live events the dashboard shows
/// arrive. Effects run only in the browser: on the server it stays 0.
fn live_reloads(live: LiveState) -> ReadSignal<u64> {
    let (reloads, set_reloads) = signal(0u64);
    // Node events come with every pull; only a change the dashboard shows counts.
    let nodes = Memo::new(move |_| {
        live.nodes.with(|m| {
            let mut shown: Vec<_> = m
                .values()
                .map(|n| {
                    let healthy = (n.push_status.clone(), n.pull_status.clone());
                    let push = (n.pushed_at, n.last_error.clone());
                    let versions = (n.applied_version.clone(), n.desired_version.clone());
                    (n.id, healthy, push, versions)
                })
                .collect();
            shown.sort();
            shown
        })
    });
    let pending = StoredValue::new(false);
    Effect::new(move |first: Option<()>| {
        nodes.track();
        live.users.track();
        live.removed.track();
        live.nodes_version.track();
        live.users_version.track();
        live.settings_version.track();
        // The first run sees the state the page was rendered with.
        if first.is_none() || pending.get_value() {
            return;
        }
        pending.set_value(true);
        set_timeout(
            move || {
                pending.try_set_value(false);
                set_reloads.try_update(|n| *n += 1);
            },
            std::time::Duration::from_millis(REFRESH_MS),
        );
    });
    reloads
}

/// Everything the dashboard shows.
#[component]
fn Overview(d: DashboardView) -> impl IntoView {
    let live = live::use_live();
    let now = Signal::from(live.now);
    let disabled = d
        .disabled_by
        .iter()
        .map(|(reason, n)| {
            let reason = reason.as_str();
            view! {
                <div>
                    <dt>{format!("Disabled: {reason}")}</dt>
                    <dd><a href=format!("/users?status={reason}") data-testid=format!("dash-users-disabled-{reason}")>{*n}</a></dd>
                </div>
            }
        })
        .collect_view();
    let zone = d.time_zone.clone();
    let pushes = d.pushes.clone();
    view! {
        <div class="dash-cards">
            <section class="card" aria-labelledby="dash-users-title">
                <h2 id="dash-users-title">"Users"</h2>
                <dl class="dash-stats">
                    <div><dt>"Total"</dt><dd data-testid="dash-users-total">{d.users_total}</dd></div>
                    <div><dt>"Active"</dt>
                        <dd><a href="/users?status=enabled" data-testid="dash-users-active">{d.users_active}</a></dd></div>
                    {disabled}
                </dl>
            </section>
            <section class="card" aria-labelledby="dash-traffic-title">
                <h2 id="dash-traffic-title">"Traffic"</h2>
                <dl class="dash-stats">
                    <div><dt>"Today"</dt>
                        <dd data-testid="dash-traffic-today" data-bytes=d.traffic_today>{format::bytes(d.traffic_today)}</dd></div>
                    <div><dt>"This month"</dt>
                        <dd data-testid="dash-traffic-month" data-bytes=d.traffic_month>{format::bytes(d.traffic_month)}</dd></div>
                </dl>
                <p class="hint">{format!("All users, from midnight in {zone} (the settings' time zone).")}</p>
            </section>
            <section class="card" aria-labelledby="dash-nodes-title">
                <h2 id="dash-nodes-title">"Nodes"</h2>
                <dl class="dash-stats">
                    <div><dt>"Total"</dt>
                        <dd><a href="/nodes" data-testid="dash-nodes-total">{d.nodes_total}</a></dd></div>
                    <div><dt>"Healthy"</dt><dd data-testid="dash-nodes-healthy">{d.nodes_healthy}</dd></div>
                    <div><dt>"Unhealthy"</dt><dd data-testid="dash-nodes-unhealthy">{d.nodes_unhealthy}</dd></div>
                    <div><dt>"Config drift"</dt><dd data-testid="dash-nodes-drift">{d.nodes_drift}</dd></div>
                </dl>
                <p class="hint">"Healthy: pushed (directly or through the proxy) and pulled in time."</p>
            </section>
        </div>
        <section class="card" aria-labelledby="dash-chart-title">
            <h2 id="dash-chart-title">"Traffic over the last 24 hours"</h2>
            <TrafficChart series=d.hourly/>
        </section>
        <section class="card" aria-labelledby="dash-pushes-title">
            <h2 id="dash-pushes-title">"Last config pushes"</h2>
            <Pushes pushes now/>
        </section>
    }
}

/// All users' traffic per hour, with its total and peak.
#[component]
fn TrafficChart(series: UsageSeries) -> impl IntoView {
    let total: i64 = series.points.iter().map(|p| p.bytes).sum();
    let peak = series.points.iter().map(|p| p.bytes).max().unwrap_or(0);
    let range = crate::chart::range(&series);
    let markup = svg(&series, total, peak);
    view! {
        <figure class="chart" data-testid="dash-chart">
            <div class="chart-plot" inner_html=markup></div>
            <figcaption>
                <span>"Total " <strong data-testid="dash-chart-total" data-bytes=total>{format::bytes(total)}</strong></span>
                <span>"Peak " <span>{format::bytes(peak)}</span></span>
                <span class="hint">{range}</span>
            </figcaption>
        </figure>
    }
}

/// The chart's SVG (see [`crate::chart::bars`]), bars with test id `dash-bar`.
fn svg(series: &UsageSeries, total: i64, peak: i64) -> String {
    crate::chart::bars(
        series,
        total,
        peak,
        "Traffic of all users per hour over the last 24 hours",
        "dash-bar",
    )
}

/// The table of the last config pushes.
#[component]
fn Pushes(pushes: Vec<PushView>, now: Signal<i64>) -> impl IntoView {
    if pushes.is_empty() {
        return view! {
            <p class="empty" data-testid="dash-pushes-empty">
                "No nodes yet. " <a href="/nodes">"Add a node"</a>
            </p>
        }
        .into_any();
    }
    let rows = pushes
        .into_iter()
        .map(|p| {
            let id = p.node_id;
            let testid = format!("dash-push-{id}");
            let version = p.applied_version.clone().unwrap_or_else(|| "—".to_owned());
            let pushed = (p.pushed_at > 0).then(|| {
                view! { <Timestamp at_ms=p.pushed_at now_ms=now testid=format!("{testid}-at")/> }
            });
            view! {
                <tr data-testid=testid.clone()>
                    <td><a href=format!("/nodes/{id}")>{p.name}</a></td>
                    <td>{pushed.map_or_else(|| view! { <span>"never"</span> }.into_any(), IntoAny::into_any)}</td>
                    <td><StatusBadge status=p.push_status testid=format!("{testid}-status")/></td>
                    <td><code data-testid=format!("{testid}-version")>{version}</code>
                        {p.drift.then(|| view! { <span class="row-muted">"not the current config yet"</span> })}</td>
                    <td data-testid=format!("{testid}-error")>{p.last_error.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="data">
                <caption class="visually-hidden">"Each node's last config push, newest first"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Node"</th>
                        <th scope="col">"Last successful push"</th>
                        <th scope="col">"Push status"</th>
                        <th scope="col">"Applied config"</th>
                        <th scope="col">"Last error"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{UsagePoint, UsageStep};

    #[test]
    fn the_chart_keeps_exact_bytes_and_says_its_totals() {
        let at = 1_796_083_200_000; // 2026-12-01 00:00 UTC
        let series = UsageSeries {
            step: UsageStep::Hour,
            zone: "UTC".to_owned(),
            points: vec![
                UsagePoint {
                    at,
                    bytes: 0,
                    label: "2026-12-01 00:00".to_owned(),
                },
                UsagePoint {
                    at: at + 3_600_000,
                    bytes: 1_500,
                    label: "2026-12-01 01:00".to_owned(),
                },
            ],
        };
        let markup = svg(&series, 1_500, 1_500);
        assert!(markup.contains(r#"aria-label="Traffic of all users per hour over the last 24 hours: 1.50 KB in total, 1.50 KB at the peak""#), "{markup}");
        assert!(markup.contains(r#"data-at="1796083200000" data-bytes="0" x="1" y="100.00" width="8" height="0.00"><title>2026-12-01 00:00: 0 B</title>"#), "{markup}");
        assert!(
            markup.contains(r#"data-bytes="1500" x="11" y="0.00" width="8" height="100.00""#),
            "{markup}"
        );
    }
}
