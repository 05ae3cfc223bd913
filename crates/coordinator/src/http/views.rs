//! The dashboard's pages. Each gets its numbers from the request handler
//! (as the viewer) or, for the cluster-wide overview, from the same ledger
//! snapshot `/metrics` uses; amounts and times are printed exactly as the
//! CLI's tables print them (`units`, `seconds`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use suanli_ledger::SeriesPoint;
use suanli_ledger::billing::{seconds, units};
use suanli_proto::usage::{GroupBy, UsageGroup, UsageQuery, UsageReport};
use suanli_proto::{JobFilter, JobState, JobView, NodeView, Request, Response as Answer, Role};

use super::pages::{Viewer, ask, failure, internal, page};
use super::svg::{self, Series};
use super::{Http, Sample};
use crate::auth::now_ms;
use crate::server::{Caller, blocking};
use crate::state::SlotTotals;

/// Log bytes a job page shows (the CLI's `suanli logs` has the rest).
const LOG_SHOWN_BYTES: usize = 64 << 10;

/// Jobs a page lists by default, and at most.
const JOBS_PER_PAGE: u32 = 50;
const MAX_JOBS_PER_PAGE: u32 = 500;

/// Longest time range of the usage plots, in days.
const MAX_PLOT_DAYS: u64 = 366;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

pub(crate) fn utc(ms: u64) -> String {
    utc_as(ms, "%Y-%m-%d %H:%M:%S")
}

/// `ms` since the epoch in UTC, as `format` (strftime); the bare number
/// if it is no time jiff can represent.
fn utc_as(ms: u64, format: &str) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(|| ms.to_string(), |t| t.strftime(format).to_string())
}

/// Series a plot draws at most; the rest are summed into "other".
const MAX_PLOTTED_SERIES: usize = 8;

/// The [`MAX_PLOTTED_SERIES`] − 1 series with the highest cost, then one
/// "other" series summing the rest per bucket, so a plot stays small and
/// its colours distinct however many tenants, nodes or days there are.
fn top_series(series: BTreeMap<String, Vec<SeriesPoint>>) -> Vec<(String, Vec<SeriesPoint>)> {
    let cost = |points: &[SeriesPoint]| -> u64 {
        points
            .iter()
            .map(|p| p.usage.cost_micros)
            .fold(0, u64::saturating_add)
    };
    let mut ranked: Vec<(String, Vec<SeriesPoint>)> = series.into_iter().collect();
    ranked.sort_by(|a, b| cost(&b.1).cmp(&cost(&a.1)).then_with(|| a.0.cmp(&b.0)));
    if ranked.len() <= MAX_PLOTTED_SERIES {
        return ranked;
    }
    let rest = ranked.split_off(MAX_PLOTTED_SERIES - 1);
    let mut other: BTreeMap<u64, UsageGroup> = BTreeMap::new();
    for p in rest.into_iter().flat_map(|(_, points)| points) {
        suanli_ledger::add_usage(other.entry(p.bucket_ms).or_default(), &p.usage);
    }
    let other = other
        .into_iter()
        .map(|(bucket_ms, usage)| SeriesPoint { bucket_ms, usage })
        .collect();
    ranked.push(("other".to_owned(), other));
    ranked
}

fn card(label: &str, id: &str, value: String) -> Markup {
    html! { div.card { span.label { (label) } span.value #(id) { (value) } } }
}

pub(crate) async fn overview(State(http): State<Arc<Http>>, Viewer(v): Viewer) -> Response {
    let body = match v.role {
        Role::Admin => admin_overview(&http).await,
        Role::Tenant => tenant_overview(&http, &v).await,
        Role::Node => provider_overview(&http, &v).await,
    };
    match body {
        Ok(body) => page("Overview", &v, body).into_response(),
        Err(response) => response,
    }
}

async fn admin_overview(http: &Arc<Http>) -> Result<Markup, Response> {
    let stats = http.stats().await?;
    let nodes = http.shared.node_views();
    let count = |state: JobState| {
        stats
            .jobs_by_state
            .iter()
            .find(|(s, _)| s == state.as_str())
            .map_or(0, |(_, n)| *n)
    };
    let t = SlotTotals::of(&nodes);
    let now = now_ms();
    Ok(html! {
        section.cards {
            (card("Nodes", "nodes", t.nodes.to_string()))
            (card("GPUs", "gpus", t.gpus.to_string()))
            (card("Slots busy", "slots-busy", format!("{} / {}", t.busy, t.slots)))
            (card("Queued jobs", "queued", count(JobState::Queued).to_string()))
            (card("Running jobs", "running", count(JobState::Running).to_string()))
        }
        h2 { "Utilisation" }
        (utilisation(&http.samples()))
        h2 { "Nodes" }
        (node_table(&nodes))
        h2 { "Queue" }
        @if stats.queued.is_empty() { p { "Nothing is queued." } } @else {
            div.scroll { table #queue {
                thead { tr { th { "Tenant" } th.num { "Queued" } th.num { "Oldest waits" } } }
                tbody { @for q in &stats.queued { tr {
                    td data-field="tenant" { (q.tenant) }
                    td.num data-field="jobs" { (q.jobs) }
                    td.num { (format_age(now.saturating_sub(q.oldest_submitted_ms))) }
                } } }
            } }
        }
    })
}

fn format_age(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(ms / 1000)).to_string()
}

fn utilisation(samples: &[Sample]) -> Markup {
    let points: Vec<f64> = samples
        .iter()
        .map(|s| match s.slots {
            0 => 0.0,
            n => s.busy as f64 / n as f64,
        })
        .collect();
    let (first, last) = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => (utc(a.at_ms), utc(b.at_ms)),
        _ => (String::new(), String::new()),
    };
    svg::fraction_line(
        "Busy slots / slots of connected nodes",
        &points,
        &first,
        &last,
    )
}

pub(crate) fn node_table(nodes: &[NodeView]) -> Markup {
    html! {
        @if nodes.is_empty() { p { "No node is connected." } } @else {
            div.scroll { table #nodes {
                thead { tr {
                    th { "Node" } th { "GPU" } th { "Class" } th.num { "Busy" } th.num { "Slots" }
                    th { "State" } th.num { "Jobs run" } th { "Connected since" }
                } }
                tbody { @for n in nodes { tr data-node=(n.name) {
                    td data-field="name" { (n.name) }
                    td data-field="gpu" { (n.gpu.name) }
                    td data-field="gpu_class" { (n.gpu_class) }
                    td.num data-field="running" { (n.running) }
                    td.num data-field="allowed_slots" { (n.allowed_slots) }
                    td data-field="state" { (node_state(n)) }
                    td.num data-field="jobs_run" { (n.jobs_run) }
                    td { (utc(n.connected_ms)) }
                } } }
            } }
        }
    }
}

fn node_state(n: &NodeView) -> String {
    if let Some(sim) = n.simulated_faults {
        return format!("simulating faults ({})", sim.describe());
    }
    match (&n.quarantine, n.draining) {
        (Some(why), _) => format!("quarantined: {why}"),
        (None, true) => "draining".into(),
        (None, false) => "ready".into(),
    }
}

async fn tenant_overview(http: &Arc<Http>, v: &Caller) -> Result<Markup, Response> {
    let Answer::Tenant(t) = ask(http, v, Request::ShowTenant(None)).await? else {
        return Err(unexpected());
    };
    let count = |state: JobState| {
        t.jobs
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    };
    Ok(html! {
        section.cards {
            (card("Queued jobs", "queued", count(JobState::Queued).to_string()))
            (card("Running jobs", "running", count(JobState::Running).to_string()))
            (card("Spent", "spent", units(t.spent_micros)))
            (card("Held for running jobs", "held", units(t.held_micros)))
            (card("Credit limit", "limit", t.credit_limit_micros.map_or_else(|| "none".into(), units)))
        }
        p { a href="/jobs" { "Your jobs" } " · " a href="/usage" { "Your usage and cost" } }
    })
}

async fn provider_overview(http: &Arc<Http>, v: &Caller) -> Result<Markup, Response> {
    let nodes: Vec<NodeView> = http
        .shared
        .node_views()
        .into_iter()
        .filter(|n| n.name == v.name)
        .collect();
    let report = usage_report(http, v, GroupBy::Nothing).await?;
    Ok(html! {
        section.cards {
            (card("Sessions", "nodes", nodes.len().to_string()))
            (card("Earned", "earned", units(report.total.cost_micros)))
            (card("GPU-seconds billed", "billed", seconds(report.total.charged_gpu_ns)))
        }
        h2 { "Your nodes" }
        (node_table(&nodes))
    })
}

fn unexpected() -> Response {
    internal("unexpected answer from the request handler")
}

#[derive(serde::Deserialize)]
pub(crate) struct JobsQuery {
    state: Option<String>,
    limit: Option<u32>,
    before: Option<u64>,
}

pub(crate) async fn jobs(
    State(http): State<Arc<Http>>,
    Viewer(v): Viewer,
    Query(q): Query<JobsQuery>,
) -> Response {
    let state = match q.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match JobState::parse(s) {
            Some(state) => Some(state),
            None => return failure(StatusCode::BAD_REQUEST, &format!("no job state {s:?}")),
        },
    };
    let limit = q.limit.unwrap_or(JOBS_PER_PAGE).clamp(1, MAX_JOBS_PER_PAGE);
    let filter = JobFilter {
        state,
        before: q.before,
        limit,
    };
    let jobs = match ask(&http, &v, Request::ListJobs(filter)).await {
        Ok(Answer::Jobs(jobs)) => jobs,
        Ok(_) => return unexpected(),
        Err(response) => return response,
    };
    let older = (jobs.len() as u32 == limit)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    let body = html! {
        form.filter method="get" action="/jobs" {
            label for="state" { "State" }
            select #state name="state" {
                option value="" { "any" }
                @for s in JobState::ALL {
                    option value=(s.as_str()) selected[state == Some(s)] { (s.as_str()) }
                }
            }
            label for="limit" { "Show" }
            input #limit type="number" name="limit" min="1" max=(MAX_JOBS_PER_PAGE) value=(limit);
            button type="submit" { "Filter" }
        }
        (job_table(&jobs, v.role == Role::Admin))
        @if let Some(before) = older {
            p { a #older href=(format!("/jobs?state={}&limit={limit}&before={before}", state.map_or("", |s| s.as_str()))) { "Older jobs" } }
        }
    };
    page("Jobs", &v, body).into_response()
}

fn job_table(jobs: &[JobView], show_tenant: bool) -> Markup {
    html! {
        @if jobs.is_empty() { p { "No jobs." } } @else {
            div.scroll { table #jobs {
                thead { tr {
                    th { "Job" } @if show_tenant { th { "Tenant" } } th { "State" } th { "Outcome" }
                    th { "Submitted" } th.num { "Attempts" } th.num { "GPU-seconds" } th.num { "Cost" }
                } }
                tbody { @for j in jobs { tr data-job=(j.id) {
                    td data-field="id" { a href=(format!("/jobs/{}", j.id)) { (j.id) } }
                    @if show_tenant { td data-field="tenant" { (j.tenant) } }
                    td data-field="state" { (j.state.as_str()) }
                    td data-field="outcome" { (j.outcome.map_or("", |o| o.as_str())) }
                    td { (utc(j.submitted_ms)) }
                    td.num data-field="attempts" { (j.attempts.len()) }
                    td.num data-field="gpu" { (seconds(j.attempts.iter().map(|a| a.gpu_ns).sum())) }
                    td.num data-field="cost" { (units(j.attempts.iter().map(|a| a.cost_micros).sum())) }
                } } }
            } }
        }
    }
}

pub(crate) async fn job(
    State(http): State<Arc<Http>>,
    Viewer(v): Viewer,
    Path(id): Path<u64>,
) -> Response {
    let view = match ask(&http, &v, Request::Status(id)).await {
        Ok(Answer::Job(view)) => view,
        Ok(_) => return unexpected(),
        Err(response) => return response,
    };
    let shared = http.shared.clone();
    let log = blocking(move || shared.read_log_chunk(id, 0, LOG_SHOWN_BYTES))
        .await
        .unwrap_or_default();
    let body = html! {
        dl.facts {
            dt { "Tenant" } dd #tenant { (view.tenant) }
            dt { "State" } dd #state { (view.state.as_str()) }
            dt { "Outcome" } dd #outcome { (view.outcome.map_or("", |o| o.as_str())) }
            @if let Some(why) = &view.waiting_reason { dt { "Waiting" } dd { (why) } }
            @if let Some(e) = &view.error { dt { "Error" } dd.error { (e) } }
            dt { "Submitted" } dd { (utc(view.submitted_ms)) }
            @if let Some(f) = view.finished_ms { dt { "Finished" } dd { (utc(f)) } }
            dt { "Module" } dd.hash { (view.spec.module.to_string()) }
            dt { "Input" } dd.hash { (view.spec.input.to_string()) }
            @if let Some(o) = &view.output { dt { "Output" } dd.hash { (o.to_string()) " (" (view.output_bytes) " bytes)" } }
        }
        h2 { "Attempts" }
        div.scroll { table #attempts {
            thead { tr {
                th.num { "#" } th { "Node" } th { "Class" } th { "Outcome" } th.num { "GPU-seconds" }
                th.num { "Billed GPU-seconds" } th.num { "Cost" } th { "Started" } th { "Error" }
            } }
            tbody { @for a in &view.attempts { tr {
                td.num { (a.attempt) }
                td data-field="node" { (a.node) }
                td { (a.gpu_class) }
                td data-field="outcome" { (a.outcome.map_or("running", |o| o.as_str())) }
                td.num data-field="gpu" { (seconds(a.gpu_ns)) }
                td.num data-field="billed" { (seconds(a.charged_gpu_ns)) }
                td.num data-field="cost" { (units(a.cost_micros)) }
                td { (utc(a.started_ms)) }
                td { (a.error.as_deref().unwrap_or("")) }
            } } }
        } }
        h2 { "Log" }
        @if log.is_empty() { p { "No log." } } @else {
            pre #log { (String::from_utf8_lossy(&log)) }
            @if log.len() == LOG_SHOWN_BYTES { p { "The first 64 KiB; `suanli logs " (id) "` prints all of it." } }
        }
    };
    page(&format!("Job {id}"), &v, body).into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct UsageParams {
    by: Option<String>,
    days: Option<u64>,
}

async fn usage_report(http: &Http, v: &Caller, by: GroupBy) -> Result<UsageReport, Response> {
    let query = UsageQuery {
        group_by: by,
        ..UsageQuery::default()
    };
    match ask(http, v, Request::Usage(query)).await? {
        Answer::Usage(report) => Ok(report),
        _ => Err(unexpected()),
    }
}

pub(crate) async fn usage(
    State(http): State<Arc<Http>>,
    Viewer(v): Viewer,
    Query(p): Query<UsageParams>,
) -> Response {
    let default = match v.role {
        Role::Admin => GroupBy::Tenant,
        Role::Tenant => GroupBy::Class,
        Role::Node => GroupBy::Class,
    };
    usage_page(&http, &v, p, default, "Usage and cost").await
}

pub(crate) async fn earnings(
    State(http): State<Arc<Http>>,
    Viewer(v): Viewer,
    Query(p): Query<UsageParams>,
) -> Response {
    if v.role == Role::Tenant {
        return failure(
            StatusCode::FORBIDDEN,
            "earnings are for providers (node tokens) and admins",
        );
    }
    usage_page(&http, &v, p, GroupBy::Node, "Provider earnings").await
}

async fn usage_page(
    http: &Arc<Http>,
    v: &Caller,
    p: UsageParams,
    default: GroupBy,
    title: &str,
) -> Response {
    let by = match p.by.as_deref() {
        None | Some("") => default,
        Some(s) => match GroupBy::parse(s) {
            Some(GroupBy::Nothing) | None => {
                return failure(StatusCode::BAD_REQUEST, "by: tenant, node, class or day");
            }
            Some(by) => by,
        },
    };
    let days = p.days.unwrap_or(7).clamp(1, MAX_PLOT_DAYS);
    let report = match usage_report(http, v, by).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let plots = match usage_plots(http, v, by, days).await {
        Ok(plots) => plots,
        Err(response) => return response,
    };
    let body = html! {
        form.filter method="get" {
            label for="by" { "By" }
            select #by name="by" {
                @for g in [GroupBy::Tenant, GroupBy::Node, GroupBy::Class, GroupBy::Day] {
                    option value=(g.as_str()) selected[g == by] { (g.as_str()) }
                }
            }
            label for="days" { "Plot days" }
            input #days type="number" name="days" min="1" max=(MAX_PLOT_DAYS) value=(days);
            button type="submit" { "Show" }
        }
        section.cards {
            (card(if by == GroupBy::Node && default == GroupBy::Node { "Earned" } else { "Cost" }, "total-cost", units(report.total.cost_micros)))
            (card("GPU-seconds billed", "total-billed", seconds(report.total.charged_gpu_ns)))
            (card("Attempts", "total-attempts", report.total.attempts.to_string()))
        }
        (plots)
        h2 { "All time, by " (by.as_str()) }
        (usage_table(by, &report))
    };
    page(title, v, body).into_response()
}

/// The same columns, in the same units, as `suanli usage --group-by …`.
fn usage_table(by: GroupBy, report: &UsageReport) -> Markup {
    let row = |g: &UsageGroup, total: bool| {
        html! {
            tr data-key=(g.key) .total[total] {
                td data-field="key" { @if total { "total" } @else { (g.key) } }
                td.num data-field="attempts" { (g.attempts) }
                td.num data-field="gpu" { (seconds(g.gpu_ns)) }
                td.num data-field="billed" { (seconds(g.charged_gpu_ns)) }
                td.num data-field="wall" { (seconds(g.wall_ns)) }
                td.num data-field="cost" { (units(g.cost_micros)) }
            }
        }
    };
    html! {
        div.scroll { table #usage {
            thead { tr {
                th { (by.as_str()) } th.num { "Attempts" } th.num { "GPU-seconds" }
                th.num { "Billed GPU-seconds" } th.num { "Wall-seconds" } th.num { "Cost" }
            } }
            tbody {
                @for g in &report.groups { (row(g, false)) }
                (row(&report.total, true))
            }
        } }
    }
}

/// Cost and billed GPU time per hour (up to two days) or per day, one
/// series per group, over the last `days` days.
async fn usage_plots(
    http: &Arc<Http>,
    v: &Caller,
    by: GroupBy,
    days: u64,
) -> Result<Markup, Response> {
    let now = now_ms();
    let bucket = if days <= 2 { HOUR_MS } else { DAY_MS };
    let since = (now.saturating_sub(days * DAY_MS)) / bucket * bucket;
    let query = UsageQuery {
        since_ms: Some(since),
        group_by: by,
        ..UsageQuery::default()
    };
    let query = crate::server::narrow(v, query)
        .map_err(|_| failure(StatusCode::FORBIDDEN, "not your usage"))?;
    let series = top_series(http.read(move |l| l.usage_series(&query, bucket)).await?);
    let starts: Vec<u64> = (0..=(now / bucket * bucket - since) / bucket)
        .map(|k| since + k * bucket)
        .collect();
    let format = if bucket == DAY_MS {
        "%Y-%m-%d"
    } else {
        "%m-%d %H:%M"
    };
    let labels: Vec<String> = starts.iter().map(|&ms| utc_as(ms, format)).collect();
    let to_series = |value: &dyn Fn(&UsageGroup) -> f64| -> Vec<Series> {
        series
            .iter()
            .map(|(key, points)| Series {
                name: key.clone(),
                values: points
                    .iter()
                    .map(|p| (((p.bucket_ms - since) / bucket) as usize, value(&p.usage)))
                    .collect(),
            })
            .collect()
    };
    let cost = to_series(&|g| g.cost_micros as f64 / 1e6);
    let gpu = to_series(&|g| g.charged_gpu_ns as f64 / 1e9);
    let per = if bucket == DAY_MS { "day" } else { "hour" };
    let keys: BTreeSet<&String> = series.iter().map(|(k, _)| k).collect();
    Ok(html! {
        @if keys.is_empty() { p { "No usage in the last " (days) " days." } } @else {
            div.plots {
                (svg::stacked_bars(&format!("Cost per {per}"), &labels, &cost, &|x| format!("{x:.6}")))
                (svg::stacked_bars(&format!("Billed GPU-seconds per {per}"), &labels, &gpu, &|x| format!("{x:.3} s")))
            }
        }
    })
}
