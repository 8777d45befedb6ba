//! Usage charts: a user's or a node's usage per hour (the last 24 hours, labelled in the
//! settings' time zone) or per day (the last 30 days, UTC days), drawn as an inline SVG bar
//! chart. The page renders it on the server; in the
//! browser it is fetched again whenever the usage it charts changes (live events), so the last
//! bar grows with the traffic ([`UsageHistory`]). The SVG is built as markup here (like the QR codes), from numbers
//! and the labels the server made. Test ids: `usage-chart`, `usage-chart-hour`, `usage-chart-day`,
//! `usage-chart-total`, `usage-chart-peak`, `usage-bar` (with `data-at` and `data-bytes`).

use leptos::prelude::*;

use crate::api::load_usage;
use crate::components::ErrorBox;
use crate::format;
use crate::model::{UsageOf, UsageSeries, UsageStep};

/// Width of one bar's slot and the chart's height, in SVG user units.
const SLOT: usize = 10;
const HEIGHT: i64 = 100;

/// A usage chart's data: the period shown and its series, fetched again whenever the period or
/// `changed` does. Made at the top of an island, like every resource of an island: one made while
/// a `Suspense` resolves would not find the data the server rendered it with.
#[derive(Clone, Copy)]
pub struct UsageHistory {
    step: RwSignal<UsageStep>,
    series: Resource<Result<UsageSeries, crate::AppError>>,
}

impl UsageHistory {
    /// The history of `of` (`None`: nothing to chart, an error), refetched when `changed` does.
    pub fn new<T>(of: Option<UsageOf>, changed: impl Fn() -> T + Send + Sync + 'static) -> Self
    where
        T: PartialEq + Clone + Send + Sync + 'static,
    {
        let step = RwSignal::new(UsageStep::Hour);
        let series = Resource::new(
            move || (step.get(), changed()),
            move |(step, _)| async move {
                match of {
                    Some(of) => load_usage(of, step).await,
                    None => Err(crate::AppError::NotFound("this usage history".to_owned())),
                }
            },
        );
        Self { step, series }
    }
}

/// The usage history card of a user or a node.
#[component]
pub fn UsageChart(history: UsageHistory) -> impl IntoView {
    let UsageHistory { step, series } = history;
    let choice = move |this: UsageStep, label: &'static str, testid: &'static str| {
        view! {
            <button type="button" data-testid=testid
                aria-pressed=move || (step.get() == this).to_string()
                on:click=move |_| step.set(this)>{label}</button>
        }
    };
    view! {
        <section class="card" aria-labelledby="usage-chart-title">
            <h2 id="usage-chart-title">"Usage history"</h2>
            <div class="segmented" role="group" aria-label="Period">
                {choice(UsageStep::Hour, "Last 24 hours", "usage-chart-hour")}
                {choice(UsageStep::Day, "Last 30 days", "usage-chart-day")}
            </div>
            <Transition fallback=|| view! { <p>"Loading the usage history…"</p> }>
                {move || series.get().map(|r| match r {
                    Ok(series) => view! { <Bars series/> }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// The chart of one series with its total, peak and period.
#[component]
fn Bars(series: UsageSeries) -> impl IntoView {
    let total: i64 = series.points.iter().map(|p| p.bytes).sum();
    let peak = series.points.iter().map(|p| p.bytes).max().unwrap_or(0);
    let range = range(&series);
    let markup = svg(&series, total, peak);
    view! {
        <figure class="chart" data-testid="usage-chart">
            <div class="chart-plot" inner_html=markup></div>
            <figcaption>
                <span>"Total " <strong data-testid="usage-chart-total">{format::bytes(total)}</strong></span>
                <span>"Peak " <span data-testid="usage-chart-peak">{format::bytes(peak)}</span></span>
                <span class="hint">{range}</span>
            </figcaption>
        </figure>
    }
}

/// The period a series covers, for people: `2026-12-01 10:00 – 2026-12-02 09:00 Europe/Berlin`.
pub(crate) fn range(series: &UsageSeries) -> String {
    match (series.points.first(), series.points.last()) {
        (Some(first), Some(last)) => format!("{} – {} {}", first.label, last.label, series.zone),
        _ => String::new(),
    }
}

/// The SVG bar chart of a usage chart: see [`bars`].
fn svg(series: &UsageSeries, total: i64, peak: i64) -> String {
    let period = match series.step {
        UsageStep::Hour => "per hour over the last 24 hours",
        UsageStep::Day => "per day over the last 30 days",
    };
    bars(series, total, peak, &format!("Usage {period}"), "usage-bar")
}

/// An SVG bar chart of `series`: bars scaled to the peak (a non-empty bucket is at least one
/// unit high), each with its exact bytes in `data-bytes`, test id `testid` and a tooltip; the
/// whole chart is one image whose label is `summary` with the total and the peak. Also the
/// dashboard's chart.
pub(crate) fn bars(
    series: &UsageSeries,
    total: i64,
    peak: i64,
    summary: &str,
    testid: &str,
) -> String {
    let mut out = format!(
        r#"<svg viewBox="0 0 {w} {HEIGHT}" preserveAspectRatio="none" role="img" aria-label="{summary}: {total} in total, {peak} at the peak"><line class="axis" x1="0" y1="{HEIGHT}" x2="{w}" y2="{HEIGHT}"/>"#,
        w = series.points.len() * SLOT,
        total = format::bytes(total),
        peak = format::bytes(peak),
    );
    for (i, point) in series.points.iter().enumerate() {
        // In hundredths (rounded) of the chart's height; a bar that carried anything is at
        // least 1 tall.
        let height: i128 = if peak > 0 && point.bytes > 0 {
            let (bytes, peak) = (i128::from(point.bytes), i128::from(peak));
            ((bytes * i128::from(HEIGHT) * 100 * 2 + peak) / (peak * 2)).max(100)
        } else {
            0
        };
        out.push_str(&format!(
            r#"<rect data-testid="{testid}" data-at="{at}" data-bytes="{bytes}" x="{x}" y="{y}" width="{width}" height="{height}"><title>{label}: {size}</title></rect>"#,
            at = point.at,
            bytes = point.bytes,
            x = i * SLOT + 1,
            y = format::decimal(i128::from(HEIGHT) * 100 - height, 100, 2),
            height = format::decimal(height, 100, 2),
            width = SLOT - 2,
            label = point.label,
            size = format::bytes(point.bytes),
        ));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UsagePoint;

    #[test]
    fn bars_scale_to_the_peak_and_keep_exact_bytes() {
        let (day, hour) = (1_764_547_200_000, 3_600_000); // 2025-12-01 00:00 UTC
        let point = |i: i64, bytes: i64, label: &str| UsagePoint {
            at: day + i * hour,
            bytes,
            label: label.to_owned(),
        };
        let series = UsageSeries {
            step: UsageStep::Hour,
            zone: "Asia/Kolkata".to_owned(),
            points: vec![
                point(0, 0, "2025-12-01 05:30"),
                point(1, 1, "2025-12-01 06:30"),
                point(2, 2_000_000, "2025-12-01 07:30"),
            ],
        };
        let markup = svg(&series, 2_000_001, 2_000_000);
        assert!(
            markup.starts_with(r#"<svg viewBox="0 0 30 100""#),
            "{markup}"
        );
        assert!(markup.contains(r#"aria-label="Usage per hour over the last 24 hours: 2.00 MB in total, 2.00 MB at the peak""#));
        // Empty bucket: no height; a tiny one: still visible; the peak: full height. Each bar's
        // tooltip is its label.
        assert!(markup.contains(r#"data-bytes="0" x="1" y="100.00" width="8" height="0.00"><title>2025-12-01 05:30: 0 B</title>"#), "{markup}");
        assert!(markup.contains(r#"data-bytes="1" x="11" y="99.00" width="8" height="1.00"><title>2025-12-01 06:30: 1 B</title>"#), "{markup}");
        assert!(
            markup.contains(r#"data-bytes="2000000" x="21" y="0.00" width="8" height="100.00""#),
            "{markup}"
        );
        assert_eq!(markup.matches("<rect").count(), 3);
        assert_eq!(
            range(&series),
            "2025-12-01 05:30 – 2025-12-01 07:30 Asia/Kolkata"
        );
    }
}
