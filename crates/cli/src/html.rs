//! The run report as one self-contained HTML page: a summary, an SVG timeline (green's weight
//! over time, replication lag against its threshold, every health round with the failed ones
//! marked, approvals, the freeze and the database switch, the rollback and its cause) and the
//! audit table. No script, no external asset: it opens anywhere and can be attached to a ticket.
//! Every value from the report goes through maud, which escapes it; the page's
//! Content-Security-Policy allows no script at all, so even markup that got through would not run
//! (crates/cli/tests/browser.rs, `a_crafted_report_runs_no_script_in_the_page`).

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

const W: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const WEIGHT_TOP: f64 = 30.0;
const WEIGHT_H: f64 = 140.0;
const LAG_TOP: f64 = 200.0;
const LAG_H: f64 = 110.0;
const HEALTH_Y: f64 = 345.0;
const H: f64 = 380.0;

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

/// No script, no fetch, no frame: the page is data. Inline styles only (the page's own).
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE_CSS: &str = "body{font:14px sans-serif;margin:24px;color:#222} table{border-collapse:collapse;font-size:12px} td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top} .badge{padding:2px 8px;border-radius:4px;color:#fff}";

const SVG_CSS: &str = "text{font:11px sans-serif;fill:#444} .axis{stroke:#bbb} .weight{fill:none;stroke:#2a7;stroke-width:2} .lag{fill:none;stroke:#36c;stroke-width:1.5} .threshold{stroke:#e88;stroke-dasharray:4 3} .ok{fill:#5c9} .failed{fill:#c33} .approval{stroke:#a6c;stroke-width:1.5} .rollback{stroke:#c33;stroke-width:2} .freeze{fill:#fc6;opacity:.35} .switch{stroke:#f80;stroke-width:2}";

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
    let threshold = num(report, "lagThresholdSeconds");
    let lag_max = lags
        .iter()
        .map(|p| p.1)
        .chain(threshold)
        .fold(1.0, f64::max);
    let ly = |l: f64| LAG_TOP + LAG_H * (1.0 - (l / lag_max).min(1.0));
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

    let svg: Markup = html! {
        svg xmlns="http://www.w3.org/2000/svg" id="timeline" viewBox=(format!("0 0 {W} {H}")) width=(W) height=(H) role="img" aria-label="run timeline" {
            style { (PreEscaped(SVG_CSS)) }
            text x="4" y=(WEIGHT_TOP + 10.0) { "green %" }
            text x="4" y=(LAG_TOP + 10.0) { "lag (s)" }
            text x="4" y=(HEALTH_Y + 4.0) { "health" }
            line class="axis" x1=(LEFT) y1=(WEIGHT_TOP + WEIGHT_H) x2=(W - RIGHT) y2=(WEIGHT_TOP + WEIGHT_H) {}
            line class="axis" x1=(LEFT) y1=(LAG_TOP + LAG_H) x2=(W - RIGHT) y2=(LAG_TOP + LAG_H) {}
            text x=(LEFT) y=(H - 4.0) { "0" }
            text x=(W - RIGHT) y=(H - 4.0) text-anchor="end" { (hms(end)) }
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
                    title { (hms(*t)) " " (text(e, "event")) ": " (text(e, "message")) }
                }
            }
        }
    };

    let outcome = text(report, "outcome");
    let color = match outcome {
        "completed" => "#2a7",
        "rolled_back" | "completed_with_errors" => "#d80",
        _ => "#c33",
    };
    let transitions = match (
        report["stateTransitions"].as_u64(),
        num(report, "estimatedCostUsd"),
    ) {
        (Some(t), Some(c)) => format!("{t} state transitions · est. ${c:.4}"),
        (Some(t), None) => format!("{t} state transitions"),
        _ => String::new(),
    };
    let error = report.get("error").and_then(Value::as_str);
    // A Lambda error's cause is its error document: the page shows its message.
    let cause = report.get("cause").and_then(Value::as_str).map(|c| {
        cutover_core::error::ErrorInfo {
            error: String::new(),
            cause: c.to_string(),
        }
        .message()
    });
    let data = report.get("data").cloned().unwrap_or(Value::Null);
    let (app, run) = (text(report, "application"), text(report, "runId"));
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                title { "cutover " (app) " " (run) }
                style { (PreEscaped(PAGE_CSS)) }
            }
            body {
                h1 { (app) " " span class="badge" style=(format!("background:{color}")) id="outcome" { (outcome) } }
                p { "Run " code { (run) } " · " (hms(end)) " · " (transitions) }
                p id="cause" {
                    @if let Some(e) = error {
                        "Error " b { (e) }
                        @if let Some(c) = &cause { ": " (c) }
                    }
                }
                p id="data" {
                    "Data: mode " (text(&data, "mode"))
                    "; writes accepted " (shown(&data["writesAccepted"]))
                    ", lost " (shown(&data["writesLost"]))
                    ", refused while frozen " (shown(&data["writesRefused"]))
                    "; frozen " (shown(&data["freezeSeconds"])) "s"
                    "; database " (text(&data, "survivingDatabase")) "."
                }
                (svg)
                h2 { "Audit trail" }
                table id="audit" {
                    tr { th { "t" } th { "state" } th { "event" } th { "blue/green" } th { "lag s" } th { "health" } th { "by" } th { "message" } }
                    @for e in &timeline {
                        tr {
                            td { (hms(num(e, "t").unwrap_or(0.0))) }
                            td { (text(e, "state")) }
                            td { (text(e, "event")) }
                            td {
                                @if let Some(w) = e.get("weights") {
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
        }
    };
    page.into_string()
}
