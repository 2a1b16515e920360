//! The run report as one self-contained HTML page: the outcome and its plain cause first, an SVG
//! timeline with axes, ticks, units and a legend (green's weight over time, replication lag
//! against its threshold, every health round with the failed ones marked, labelled lines for
//! approvals, the database switch and the rollback, the freeze as a band), what went wrong, the
//! DNS before and after side by side, the approvals, the data cutover where one ran, and the
//! audit trail (collapsible) with UTC times. No script, no external asset: it opens anywhere and can be attached to a ticket.
//! Every value from the report goes through maud, which escapes it; the page's
//! Content-Security-Policy allows no script at all, so even markup that got through would not run
//! (crates/cli/tests/browser.rs, `a_crafted_report_runs_no_script_in_the_page`).

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

const W: f64 = 960.0;
const LEFT: f64 = 100.0;
const RIGHT: f64 = 20.0;
const WEIGHT_TOP: f64 = 30.0;
const WEIGHT_H: f64 = 140.0;
const LAG_TOP: f64 = 200.0;
const LAG_H: f64 = 110.0;
const HEALTH_Y: f64 = 345.0;
const H: f64 = 400.0;
/// Lag above this many thresholds is drawn at the top of the axis (clipped), so that a lag of
/// hundreds of seconds does not flatten a threshold of 30 onto the baseline.
const LAG_CLIP_THRESHOLDS: f64 = 4.0;

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn hms(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// The run's start, when the report carries it.
fn started(report: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text(report, "startedAt"))
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// `t` seconds into the run as a UTC wall-clock time, or as time since the start.
fn clock(start: Option<chrono::DateTime<chrono::Utc>>, t: f64) -> String {
    match start {
        Some(s) => (s + chrono::Duration::milliseconds((t * 1000.0).round() as i64))
            .format("%H:%M:%S")
            .to_string(),
        None => hms(t),
    }
}

/// Ticks for an axis from 0 to `max`: a round step giving about `n` of them.
fn ticks(max: f64, n: f64) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0];
    }
    let raw = max / n;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|v| *v <= max * 1.0001)
        .collect()
}

/// Time ticks in seconds: round minutes or hours, about six of them.
fn time_ticks(end: f64) -> Vec<f64> {
    const STEPS: [f64; 12] = [
        10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
    ];
    let step = STEPS
        .iter()
        .copied()
        .find(|s| end / s <= 7.0)
        .unwrap_or_else(|| (end / 6.0 / 86400.0).ceil() * 86400.0);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|v| *v <= end)
        .collect()
}

/// Each outcome its own colour: completed green, completed with errors olive, rolled back
/// orange, aborted grey, failed red, rollback failed (DNS not restored) dark purple.
fn outcome_colour(outcome: &str) -> &'static str {
    match outcome {
        "completed" => "#2a7",
        "completed_with_errors" => "#8a8a1a",
        "rolled_back" => "#d80",
        "aborted" => "#666",
        "rollback_failed" => "#6a1b9a",
        "running" => "#36c",
        "blocked" => "#999",
        "not_started" => "#ccc",
        "stopped" => "#555",
        _ => "#c33",
    }
}

/// One ALB action as the page shows it: its type, each target group's weight, its stickiness.
fn alb_action_line(a: &Value) -> String {
    let kind = text(a, "type");
    let groups: Vec<String> = match a
        .pointer("/forwardConfig/targetGroups")
        .and_then(Value::as_array)
    {
        Some(tgs) => tgs
            .iter()
            .map(|t| {
                let arn = text(t, "targetGroupArn");
                let name = arn.rsplit(':').next().unwrap_or(arn).to_string();
                format!(
                    "{name} = {}",
                    t.get("weight").map_or("1".into(), |w| w.to_string())
                )
            })
            .collect(),
        None => vec![text(a, "targetGroupArn").to_string()],
    };
    let sticky = a
        .pointer("/forwardConfig/targetGroupStickinessConfig")
        .filter(|s| s.get("enabled").and_then(Value::as_bool) == Some(true))
        .map(|s| {
            format!(
                ", sticky {} s",
                s.get("durationSeconds")
                    .map_or("?".into(), |d| d.to_string())
            )
        })
        .unwrap_or_default();
    format!("{kind}: {}{sticky}", groups.join(", "))
}

/// A record set in one line: set identifier and weight, then where it points.
fn record_line(r: &Value) -> String {
    let mut out = String::new();
    if let Some(id) = r.get("setIdentifier").and_then(Value::as_str) {
        out.push_str(id);
        if let Some(w) = r.get("weight").and_then(Value::as_u64) {
            out.push_str(&format!(" (weight {w})"));
        }
        out.push_str(": ");
    }
    if let Some(a) = r.get("aliasTarget").filter(|a| !a.is_null()) {
        out.push_str(&format!("alias {}", text(a, "dnsName")));
    } else {
        let values: Vec<String> = r
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().map(shown).collect())
            .unwrap_or_default();
        out.push_str(&values.join(", "));
    }
    out
}

/// A short label for an event line on the timeline.
fn mark_label(event: &str) -> &str {
    match event {
        "approval-requested" => "gate",
        "first-approval" => "1st approval",
        "approved" => "approved",
        "rejected" => "rejected",
        "database-switched" => "db switch",
        "rollback-submitted" => "rollback",
        "rolled-back" => "rolled back",
        other => other,
    }
}

/// Events that say something went wrong, for the list above the audit trail.
fn is_failure(e: &Value) -> bool {
    let event = text(e, "event");
    e.get("healthy").and_then(Value::as_bool) == Some(false)
        || event.contains("failed")
        || event.contains("rollback")
        || event == "rejected"
        || event == "expired"
        || event.contains("abort")
        || event == "paged"
}

/// No script, no fetch, no frame: the page is data. Inline styles only (the page's own).
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE_CSS: &str = "body{font:14px sans-serif;margin:24px;color:#222} table{border-collapse:collapse;font-size:12px} td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top} .badge{padding:2px 8px;border-radius:4px;color:#fff} .legend span{margin-right:14px;font-size:12px;white-space:nowrap} .legend i{display:inline-block;width:12px;height:8px;margin-right:4px} .side{display:flex;gap:32px} .cause{font-size:15px} details summary{cursor:pointer;font-weight:bold;margin:8px 0} .failed-row td{color:#c33}";

const SVG_CSS: &str = "text{font:11px sans-serif;fill:#444} .tick{font-size:10px;fill:#666} .mark-label{font-size:9px;fill:#555} .axis{stroke:#999} .grid{stroke:#eee} .weight{fill:none;stroke:#2a7;stroke-width:2} .lag{fill:none;stroke:#36c;stroke-width:2} .threshold{stroke:#e88;stroke-dasharray:4 3} .ok{fill:#5c9} .failed{fill:#c33} .approval{stroke:#a6c;stroke-width:1.5} .rollback{stroke:#c33;stroke-width:2} .freeze{fill:#fc6;opacity:.35} .switch{stroke:#f80;stroke-width:2}";

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// A JSON value as text for the page: strings as they are, numbers and the rest as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The page around `body`: no script (the Content-Security-Policy forbids any), the page's own
/// style, the title.
fn document(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                title { (title) }
                style { (PreEscaped(PAGE_CSS)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// Renders a report (the JSON `cutover local run --json` prints) as HTML.
pub fn render(report: &Value) -> String {
    let timeline: Vec<&Value> = report
        .get("timeline")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let end = num(report, "simulatedSeconds").unwrap_or(0.0).max(
        timeline
            .iter()
            .filter_map(|e| num(e, "t"))
            .fold(1.0, f64::max),
    );
    let x = |t: f64| LEFT + (W - LEFT - RIGHT) * (t / end).clamp(0.0, 1.0);

    // Green's weight: a step line from every event that carries weights.
    let mut weight_pts = vec![(0.0, 0.0)];
    for e in &timeline {
        if let (Some(t), Some(g)) = (
            num(e, "t"),
            e.pointer("/weights/green").and_then(Value::as_f64),
        ) {
            let last = weight_pts.last().map_or(0.0, |p| p.1);
            weight_pts.push((t, last));
            weight_pts.push((t, g));
        }
    }
    let last = weight_pts.last().map_or(0.0, |p| p.1);
    weight_pts.push((end, last));
    let weight_line: Vec<String> = weight_pts
        .iter()
        .map(|(t, g)| {
            format!(
                "{:.1},{:.1}",
                x(*t),
                WEIGHT_TOP + WEIGHT_H * (1.0 - g / 100.0)
            )
        })
        .collect();

    // Lag samples against the threshold (the axis fits both).
    let lags: Vec<(f64, f64)> = timeline
        .iter()
        .filter_map(|e| Some((num(e, "t")?, num(e, "lagSeconds")?)))
        .collect();
    let threshold = num(report, "lagThresholdSeconds").filter(|t| *t > 0.0);
    let lag_peak = lags
        .iter()
        .map(|p| p.1)
        .chain(threshold)
        .fold(1.0, f64::max);
    // The axis ends at the peak, or at a few thresholds when the peak is far above (clipped).
    let lag_max = match threshold {
        Some(th) if lag_peak > th * LAG_CLIP_THRESHOLDS => th * LAG_CLIP_THRESHOLDS,
        _ => lag_peak,
    };
    let lag_clipped = lag_peak > lag_max;
    let ly = |l: f64| LAG_TOP + LAG_H * (1.0 - (l / lag_max).min(1.0));
    let lag_ticks = ticks(lag_max, 3.0);
    let start = started(report);
    let lag_line: Vec<String> = lags
        .iter()
        .map(|(t, l)| format!("{:.1},{:.1}", x(*t), ly(*l)))
        .collect();

    // Freeze windows (writes-frozen .. writes-unfrozen), drawn behind everything else.
    let mut freezes: Vec<(f64, f64)> = Vec::new();
    let mut frozen: Option<f64> = None;
    for e in &timeline {
        match (text(e, "event"), num(e, "t")) {
            ("writes-frozen", Some(t)) => frozen = Some(t),
            ("writes-unfrozen", Some(t)) => {
                if let Some(f) = frozen.take() {
                    freezes.push((f, t));
                }
            }
            _ => {}
        }
    }
    let marks: Vec<(&Value, f64, &str)> = timeline
        .iter()
        .filter_map(|e| {
            let t = num(e, "t")?;
            let class = match text(e, "event") {
                "approved" | "rejected" | "approval-requested" | "first-approval" => "approval",
                "rollback-submitted" | "rolled-back" => "rollback",
                "database-switched" => "switch",
                _ => return None,
            };
            Some((*e, t, class))
        })
        .collect();
    // Labels of event lines, staggered over three rows so that neighbours do not overlap.
    let mut label_rows = [f64::NEG_INFINITY; 3];
    let labels: Vec<(f64, f64, &str)> = marks
        .iter()
        .map(|(e, t, _)| {
            let px = x(*t);
            let row = (0..3)
                .find(|r| px - label_rows[*r] > 70.0)
                .unwrap_or_else(|| {
                    (0..3)
                        .min_by(|a, b| label_rows[*a].total_cmp(&label_rows[*b]))
                        .unwrap_or(0)
                });
            label_rows[row] = px;
            (
                px,
                WEIGHT_TOP - 18.0 + 7.0 * row as f64,
                mark_label(text(e, "event")),
            )
        })
        .collect();

    let svg: Markup = html! {
        svg xmlns="http://www.w3.org/2000/svg" id="timeline" viewBox=(format!("0 0 {W} {H}")) width=(W) height=(H) role="img" aria-label="run timeline" {
            style { (PreEscaped(SVG_CSS)) }
            text x="4" y=(WEIGHT_TOP + 10.0) { "green %" }
            text x="4" y=(LAG_TOP + 10.0) { "lag (s)" }
            text x="4" y=(HEALTH_Y + 4.0) { "health" }
            line class="axis" x1=(LEFT) y1=(WEIGHT_TOP) x2=(LEFT) y2=(WEIGHT_TOP + WEIGHT_H) {}
            line class="axis" x1=(LEFT) y1=(WEIGHT_TOP + WEIGHT_H) x2=(W - RIGHT) y2=(WEIGHT_TOP + WEIGHT_H) {}
            g id="weight-ticks" {
                @for v in [0.0, 25.0, 50.0, 75.0, 100.0] {
                    line class="grid" x1=(LEFT) y1=(f1(WEIGHT_TOP + WEIGHT_H * (1.0 - v / 100.0))) x2=(W - RIGHT) y2=(f1(WEIGHT_TOP + WEIGHT_H * (1.0 - v / 100.0))) {}
                    text class="tick" x=(LEFT - 4.0) y=(f1(WEIGHT_TOP + WEIGHT_H * (1.0 - v / 100.0) + 4.0)) text-anchor="end" { (v) "%" }
                }
            }
            line class="axis" x1=(LEFT) y1=(LAG_TOP) x2=(LEFT) y2=(LAG_TOP + LAG_H) {}
            line class="axis" x1=(LEFT) y1=(LAG_TOP + LAG_H) x2=(W - RIGHT) y2=(LAG_TOP + LAG_H) {}
            g id="lag-ticks" {
                @for v in &lag_ticks {
                    line class="grid" x1=(LEFT) y1=(f1(ly(*v))) x2=(W - RIGHT) y2=(f1(ly(*v))) {}
                    text class="tick" x=(LEFT - 4.0) y=(f1(ly(*v) + 4.0)) text-anchor="end" { (v) " s" }
                }
                @if lag_clipped {
                    text id="lag-clipped" x=(LEFT + 4.0) y=(LAG_TOP - 2.0) { "clipped at " (lag_max) " s; peak " (lag_peak.round()) " s" }
                }
            }
            g id="time-ticks" {
                @for v in time_ticks(end) {
                    line class="axis" x1=(f1(x(v))) y1=(HEALTH_Y + 10.0) x2=(f1(x(v))) y2=(HEALTH_Y + 14.0) {}
                    text class="tick" x=(f1(x(v))) y=(HEALTH_Y + 26.0) text-anchor="middle" { (clock(start, v)) }
                }
                text x=(W - RIGHT) y=(H - 2.0) text-anchor="end" {
                    @if start.is_some() { "time (UTC) · " } @else { "time since start · " }
                    "run length " (hms(end))
                }
            }
            @for (f, t) in &freezes {
                rect class="freeze" x=(f1(x(*f))) y=(WEIGHT_TOP) width=(f1((x(*t) - x(*f)).max(1.0))) height=(HEALTH_Y - WEIGHT_TOP) {
                    title { "writes frozen " ((t - f).round()) "s" }
                }
            }
            polyline id="series-weight" class="weight" points=(weight_line.join(" ")) {}
            @if let Some(th) = threshold {
                line id="lag-threshold" class="threshold" x1=(LEFT) y1=(f1(ly(th))) x2=(W - RIGHT) y2=(f1(ly(th))) {
                    title { "threshold " (th) "s" }
                }
            }
            polyline id="series-lag" class="lag" points=(lag_line.join(" ")) {}
            @if let Some(th) = threshold {
                text class="tick threshold-label" x=(W - RIGHT) y=(f1(ly(th) - 3.0)) text-anchor="end" { "threshold " (th) " s" }
            }
            g id="series-health" {
                @for e in &timeline {
                    @if let (Some(t), Some(h)) = (num(e, "t"), e.get("healthy").and_then(Value::as_bool)) {
                        circle class=(if h { "round ok" } else { "round failed" }) cx=(f1(x(t))) cy=(HEALTH_Y) r="3" {
                            title { (hms(t)) " " (text(e, "message")) }
                        }
                    }
                }
            }
            @for (e, t, class) in &marks {
                line class=(class) x1=(f1(x(*t))) y1=(WEIGHT_TOP) x2=(f1(x(*t))) y2=(HEALTH_Y + 8.0) {
                    title { (clock(start, *t)) " " (text(e, "event")) ": " (text(e, "message")) }
                }
            }
            g id="mark-labels" {
                @for (px, y, label) in &labels {
                    text class="mark-label" x=(f1(*px)) y=(f1(*y)) text-anchor="middle" { (label) }
                }
            }
        }
    };
    let legend: Markup = html! {
        div id="legend" class="legend" {
            span { i style="background:#2a7" {} "green's weight" }
            span { i style="background:#36c" {} "replication lag" }
            span { i style="background:#e88" {} "lag threshold" }
            span { i style="background:#5c9;border-radius:50%" {} "healthy round" }
            span { i style="background:#c33;border-radius:50%" {} "failed round" }
            span { i style="background:#a6c" {} "approval gate" }
            span { i style="background:#f80" {} "database switch" }
            span { i style="background:#c33" {} "rollback" }
            span { i style="background:#fc6" {} "writes frozen" }
        }
    };

    let outcome = text(report, "outcome");
    let color = outcome_colour(outcome);
    let transitions = match (
        report["stateTransitions"].as_u64(),
        num(report, "estimatedCostUsd"),
    ) {
        (Some(t), Some(c)) => format!("{t} state transitions · est. ${c:.4}"),
        (Some(t), None) => format!("{t} state transitions"),
        _ => String::new(),
    };
    let error = report.get("error").and_then(Value::as_str);
    // A Lambda error's cause is its error document: the page shows its message, in words, first.
    let cause = report
        .get("cause")
        .and_then(Value::as_str)
        .map(|c| {
            cutover_core::error::ErrorInfo {
                error: String::new(),
                cause: c.to_string(),
            }
            .message()
        })
        .filter(|c| !c.is_empty());
    let data = report.get("data").cloned().unwrap_or(Value::Null);
    // The data section only where a data mode ran; only the figures the report has.
    let data_mode = text(&data, "mode");
    let data_ran = !data_mode.is_empty() && data_mode != "unmanaged";
    let data_figures: Vec<(&str, String)> = [
        ("writes accepted", "writesAccepted", ""),
        ("lost", "writesLost", ""),
        ("refused while frozen", "writesRefused", ""),
        ("frozen", "freezeSeconds", " s"),
        ("database at the end", "survivingDatabase", ""),
        ("switched to", "switchedTo", ""),
    ]
    .iter()
    .filter_map(|(label, key, unit)| {
        let v = data.get(*key).filter(|v| !v.is_null())?;
        Some((*label, format!("{}{unit}", shown(v))))
    })
    .collect();
    let (app, run) = (text(report, "application"), text(report, "runId"));
    let records = |k: &str| -> Vec<Value> {
        report
            .get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (snapshot, final_dns) = (records("snapshot"), records("dns"));
    let approvals = records("approvals");
    let failures: Vec<&Value> = timeline.iter().copied().filter(|e| is_failure(e)).collect();
    let links: Vec<(String, String)> = report
        .get("links")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let url = v.as_str()?;
                    // Only links to the AWS console: a crafted report cannot point elsewhere.
                    let host = url
                        .strip_prefix("https://")?
                        .split(['/', '?', '#'])
                        .next()?;
                    host.ends_with(".console.aws.amazon.com")
                        .then(|| (k.clone(), url.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let body = html! {
        h1 { (app) " " span class="badge" style=(format!("background:{color}")) id="outcome" { (outcome) } }
        @if error.is_some() || cause.is_some() {
            p id="cause" class="cause" {
                @if let Some(c) = &cause { b { (c) } }
                @if let Some(e) = error {
                    @if cause.is_some() { " " }
                    "(" (e) ")"
                }
            }
        }
        p {
            "Run " code { (run) }
            @if let Some(s) = start { " · started " (s.format("%Y-%m-%d %H:%M:%S UTC")) }
            " · " (hms(end)) " · " (transitions)
        }
        @if !links.is_empty() {
            p id="links" {
                @for (i, (name, url)) in links.iter().enumerate() {
                    @if i > 0 { " · " }
                    a href=(url) rel="noopener noreferrer" { (name) }
                }
            }
        }
        (legend)
        (svg)
        @if !failures.is_empty() {
            h2 { "What went wrong" }
            table id="failures" {
                tr { th { "time" } th { "state" } th { "event" } th { "message" } }
                @for e in &failures {
                    tr class="failed-row" {
                        td { (clock(start, num(e, "t").unwrap_or(0.0))) }
                        td { (text(e, "state")) }
                        td { (text(e, "event")) }
                        td { (text(e, "message")) }
                    }
                }
            }
        }
        @if let Some(alb) = report.get("alb").filter(|a| a.is_object()) {
            h2 { "ALB" }
            p id="alb-rule" {
                @match alb.get("ruleArn").and_then(Value::as_str) {
                    Some(rule) => { "Rule " code { (rule) } }
                    None => { "Default action of listener " code { (text(alb, "listenerArn")) } }
                }
                " at the end:"
            }
            ul id="alb-final" {
                @for a in alb.get("actions").and_then(Value::as_array).into_iter().flatten() {
                    li { (alb_action_line(a)) }
                }
            }
        } @else {
        h2 { "DNS" }
        div class="side" id="dns" {
            div {
                h3 { "Before (snapshot, what a rollback restores)" }
                @if snapshot.is_empty() { p { "not recorded" } }
                ul id="dns-snapshot" { @for r in &snapshot { li { (record_line(r)) } } }
            }
            div {
                h3 { "At the end" }
                @if final_dns.is_empty() { p { "not read" } }
                ul id="dns-final" { @for r in &final_dns { li { (record_line(r)) } } }
            }
        }
        }
        @if !approvals.is_empty() {
            h2 { "Approvals" }
            table id="approvals" {
                tr { th { "gate" } th { "decision" } th { "by" } th { "at" } th { "reason" } }
                @for a in &approvals {
                    tr {
                        td { (text(a, "gate")) }
                        td { (text(a, "decision")) }
                        td { (text(a, "by")) }
                        td { @if let Some(t) = num(a, "at") { (clock(start, t)) } }
                        td { (text(a, "reason")) }
                    }
                }
            }
        }
        @if data_ran {
            h2 { "Data" }
            p id="data" {
                "Mode " b { (data_mode) }
                @for (label, value) in &data_figures { "; " (label) " " (value) }
                "."
            }
        }
        details id="audit-trail" open[timeline.len() <= 60] {
            summary { "Audit trail (" (timeline.len()) " events)" }
            table id="audit" {
                tr { th { @if start.is_some() { "UTC" } @else { "t" } } th { "state" } th { "event" } th { "blue/green" } th { "lag s" } th { "health" } th { "by" } th { "message" } }
                @for e in &timeline {
                    tr {
                        td { (clock(start, num(e, "t").unwrap_or(0.0))) }
                        td { (text(e, "state")) }
                        td { (text(e, "event")) }
                        td {
                            @if let Some(w) = e.get("weights").filter(|w| !w.is_null()) {
                                (shown(&w["blue"])) "/" (shown(&w["green"]))
                            }
                        }
                        td { @if let Some(l) = num(e, "lagSeconds") { (format!("{l:.1}")) } }
                        td {
                            @match e.get("healthy").and_then(Value::as_bool) {
                                Some(true) => "ok",
                                Some(false) => "FAILED",
                                None => "",
                            }
                        }
                        td { (text(e, "actor")) }
                        td { (text(e, "message")) }
                    }
                }
            }
        }
    };
    document(&format!("cutover {app} {run}"), body)
}

/// A wave report's page (`cutover report WAVE.json --html`, the JSON `local wave --json`
/// prints): the outcome and its counts, the figures that size the wave, one bar per application
/// from its start to its end coloured by its outcome, and every application in a table, those
/// that did not complete first. No script, no external asset, every value escaped, as the run
/// page.
pub fn render_wave(report: &Value) -> String {
    let apps: Vec<&Value> = report
        .get("applications")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let wave = text(report, "wave");
    let outcome = text(report, "outcome");
    let end = num(report, "simulatedSeconds").unwrap_or(0.0).max(
        apps.iter()
            .filter_map(|a| num(a, "endedAt"))
            .fold(1.0, f64::max),
    );
    // Started applications by start, then those that never started, in the wave's order.
    let mut rows: Vec<&Value> = apps.clone();
    rows.sort_by(|a, b| {
        let key = |v: &Value| num(v, "startedAt").unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b))
    });
    let row_h = if rows.len() > 100 { 5.0 } else { 14.0 };
    let top = 20.0;
    let height = top + row_h * rows.len() as f64 + 40.0;
    let x = |t: f64| LEFT + (W - LEFT - RIGHT) * (t / end).clamp(0.0, 1.0);
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for a in &apps {
        *counts.entry(text(a, "outcome")).or_default() += 1;
    }
    // Those that did not complete first, then the rest, each in the wave's order.
    let mut listed: Vec<&Value> = apps
        .iter()
        .copied()
        .filter(|a| text(a, "outcome") != "completed")
        .collect();
    listed.extend(
        apps.iter()
            .copied()
            .filter(|a| text(a, "outcome") == "completed"),
    );
    let figure = |k: &str| report.get(k).map(shown).unwrap_or_default();
    let svg: Markup = html! {
        svg xmlns="http://www.w3.org/2000/svg" id="gantt" viewBox=(format!("0 0 {W} {height}")) width=(W) height=(height) role="img" aria-label="applications over time" {
            style { (PreEscaped(SVG_CSS)) }
            g id="time-ticks" {
                @for v in time_ticks(end) {
                    line class="grid" x1=(f1(x(v))) y1=(top) x2=(f1(x(v))) y2=(height - 30.0) {}
                    text class="tick" x=(f1(x(v))) y=(height - 16.0) text-anchor="middle" { (hms(v)) }
                }
                text x=(W - RIGHT) y=(height - 2.0) text-anchor="end" { "time since the wave started · length " (hms(end)) }
            }
            g id="bars" {
                @for (i, a) in rows.iter().enumerate() {
                    @if let Some(s) = num(a, "startedAt") {
                        @let e = num(a, "endedAt").unwrap_or(end);
                        rect class="bar" x=(f1(x(s))) y=(f1(top + row_h * i as f64)) width=(f1((x(e) - x(s)).max(1.0))) height=(f1((row_h - 1.0).max(1.0))) fill=(outcome_colour(text(a, "outcome"))) {
                            title { (text(a, "application")) " " (text(a, "outcome")) " " (hms(s)) "–" (hms(e)) }
                        }
                    }
                    @if rows.len() <= 100 {
                        text class="tick" x=(LEFT - 4.0) y=(f1(top + row_h * i as f64 + row_h - 4.0)) text-anchor="end" { (text(a, "application")) }
                    }
                }
            }
        }
    };
    let body = html! {
        h1 { "wave " (wave) " " span class="badge" style=(format!("background:{}", outcome_colour(outcome))) id="outcome" { (outcome) } }
        @if let Some(e) = report.get("error").and_then(Value::as_str) {
            p id="cause" class="cause" { b { (e) } }
        }
        p id="counts" {
            (apps.len()) " applications"
            @for (o, n) in &counts {
                " · " span style=(format!("color:{}", outcome_colour(o))) { (n) " " (o) }
            }
        }
        p id="figures" {
            "at most " (figure("maxConcurrentApplications")) " at once (cap " (figure("maxConcurrency")) ")"
            " · critical path " (hms(num(report, "criticalPathSeconds").unwrap_or(0.0)))
            " · longest start delay " (hms(num(report, "longestStartDelaySeconds").unwrap_or(0.0)))
            " · " (figure("stateTransitions")) " state transitions"
            " · largest state " (figure("maxStateBytes")) " bytes"
            " · longest history " (figure("maxHistoryEvents")) " events"
            " · " (figure("handovers")) " hand-over(s)"
        }
        (svg)
        h2 { "Applications" }
        table id="applications" {
            tr { th { "application" } th { "outcome" } th { "run" } th { "start" } th { "end" } th { "error" } }
            @for a in &listed {
                tr class=(if text(a, "outcome") == "completed" { "" } else { "failed-row" }) {
                    td { (text(a, "application")) }
                    td { (text(a, "outcome")) }
                    td { code { (text(a, "runId")) } }
                    td { @if let Some(t) = num(a, "startedAt") { (hms(t)) } }
                    td { @if let Some(t) = num(a, "endedAt") { (hms(t)) } }
                    td { (text(a, "error")) }
                }
            }
        }
    };
    document(&format!("cutover wave {wave}"), body)
}
