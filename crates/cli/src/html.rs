//! The run report as one self-contained HTML page: a summary, an SVG timeline (green's weight
//! over time, replication lag against its threshold, every health round with the failed ones
//! marked, approvals, the freeze and the database switch, the rollback and its cause) and the
//! audit table. No script, no external asset: it opens anywhere and can be attached to a ticket.

use serde_json::Value;
use std::fmt::Write;

const W: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const WEIGHT_TOP: f64 = 30.0;
const WEIGHT_H: f64 = 140.0;
const LAG_TOP: f64 = 200.0;
const LAG_H: f64 = 110.0;
const HEALTH_Y: f64 = 345.0;
const H: f64 = 380.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

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

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" id="timeline" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="run timeline">
<style>text{{font:11px sans-serif;fill:#444}} .axis{{stroke:#bbb}} .weight{{fill:none;stroke:#2a7;stroke-width:2}} .lag{{fill:none;stroke:#36c;stroke-width:1.5}} .threshold{{stroke:#e88;stroke-dasharray:4 3}} .ok{{fill:#5c9}} .failed{{fill:#c33}} .approval{{stroke:#a6c;stroke-width:1.5}} .rollback{{stroke:#c33;stroke-width:2}} .freeze{{fill:#fc6;opacity:.35}} .switch{{stroke:#f80;stroke-width:2}}</style>
<text x="4" y="{}">green %</text><text x="4" y="{}">lag (s)</text><text x="4" y="{}">health</text>
<line class="axis" x1="{LEFT}" y1="{}" x2="{}" y2="{}"/><line class="axis" x1="{LEFT}" y1="{}" x2="{}" y2="{}"/>
<text x="{LEFT}" y="{}">0</text><text x="{}" y="{}" text-anchor="end">{}</text>
"##,
        WEIGHT_TOP + 10.0,
        LAG_TOP + 10.0,
        HEALTH_Y + 4.0,
        WEIGHT_TOP + WEIGHT_H,
        W - RIGHT,
        WEIGHT_TOP + WEIGHT_H,
        LAG_TOP + LAG_H,
        W - RIGHT,
        LAG_TOP + LAG_H,
        H - 4.0,
        W - RIGHT,
        H - 4.0,
        hms(end)
    );
    // Freeze windows (writes-frozen .. writes-unfrozen) behind everything else.
    let mut frozen: Option<f64> = None;
    for e in &timeline {
        match (text(e, "event"), num(e, "t")) {
            ("writes-frozen", Some(t)) => frozen = Some(t),
            ("writes-unfrozen", Some(t)) => {
                if let Some(f) = frozen.take() {
                    let _ = writeln!(
                        svg,
                        r#"<rect class="freeze" x="{:.1}" y="{WEIGHT_TOP}" width="{:.1}" height="{}"><title>writes frozen {}s</title></rect>"#,
                        x(f),
                        (x(t) - x(f)).max(1.0),
                        HEALTH_Y - WEIGHT_TOP,
                        (t - f).round()
                    );
                }
            }
            _ => {}
        }
    }
    let _ = writeln!(
        svg,
        r#"<polyline id="series-weight" class="weight" points="{}"/>"#,
        weight_line.join(" ")
    );
    if let Some(th) = threshold {
        let _ = writeln!(
            svg,
            r#"<line id="lag-threshold" class="threshold" x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}"><title>threshold {th}s</title></line>"#,
            W - RIGHT,
            y = ly(th)
        );
    }
    let _ = writeln!(
        svg,
        r#"<polyline id="series-lag" class="lag" points="{}"/>"#,
        lag_line.join(" ")
    );
    let _ = writeln!(svg, r#"<g id="series-health">"#);
    for e in &timeline {
        if let (Some(t), Some(h)) = (num(e, "t"), e.get("healthy").and_then(Value::as_bool)) {
            let _ = writeln!(
                svg,
                r#"<circle class="round {}" cx="{:.1}" cy="{HEALTH_Y}" r="3"><title>{} {}</title></circle>"#,
                if h { "ok" } else { "failed" },
                x(t),
                hms(t),
                esc(text(e, "message"))
            );
        }
    }
    let _ = writeln!(svg, "</g>");
    for e in &timeline {
        let Some(t) = num(e, "t") else { continue };
        let class = match text(e, "event") {
            "approved" | "rejected" | "approval-requested" | "first-approval" => "approval",
            "rollback-submitted" | "rolled-back" => "rollback",
            "database-switched" => "switch",
            _ => continue,
        };
        let _ = writeln!(
            svg,
            r#"<line class="{class}" x1="{x:.1}" y1="{WEIGHT_TOP}" x2="{x:.1}" y2="{}"><title>{} {}: {}</title></line>"#,
            HEALTH_Y + 8.0,
            hms(t),
            esc(text(e, "event")),
            esc(text(e, "message")),
            x = x(t)
        );
    }
    svg.push_str("</svg>\n");

    let mut rows = String::new();
    for e in &timeline {
        let weights = e
            .get("weights")
            .map(|w| format!("{}/{}", w["blue"], w["green"]))
            .unwrap_or_default();
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            hms(num(e, "t").unwrap_or(0.0)),
            esc(text(e, "state")),
            esc(text(e, "event")),
            weights,
            num(e, "lagSeconds").map(|l| format!("{l:.1}")).unwrap_or_default(),
            e.get("healthy").and_then(Value::as_bool).map(|h| if h { "ok" } else { "FAILED" }).unwrap_or(""),
            esc(text(e, "actor")),
            esc(text(e, "message"))
        );
    }
    let outcome = text(report, "outcome");
    let data = report.get("data").cloned().unwrap_or(Value::Null);
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cutover {app} {run}</title>
<style>body{{font:14px sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;font-size:12px}} td,th{{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top}} .badge{{padding:2px 8px;border-radius:4px;color:#fff;background:{color}}}</style></head>
<body>
<h1>{app} <span class="badge" id="outcome">{outcome}</span></h1>
<p>Run <code>{run}</code> · {dur} · {transitions}</p>
<p id="cause">{cause}</p>
<p id="data">Data: mode {mode}; writes accepted {acc}, lost {lost}, refused while frozen {refused}; frozen {freeze}s; database {db}.</p>
{svg}
<h2>Audit trail</h2>
<table id="audit"><tr><th>t</th><th>state</th><th>event</th><th>blue/green</th><th>lag s</th><th>health</th><th>by</th><th>message</th></tr>
{rows}</table>
</body></html>
"#,
        app = esc(text(report, "application")),
        run = esc(text(report, "runId")),
        color = match outcome {
            "completed" => "#2a7",
            "rolled_back" => "#d80",
            _ => "#c33",
        },
        outcome = esc(outcome),
        dur = hms(end),
        transitions = match (
            report["stateTransitions"].as_u64(),
            num(report, "estimatedCostUsd")
        ) {
            (Some(t), Some(c)) => format!("{t} state transitions · est. ${c:.4}"),
            (Some(t), None) => format!("{t} state transitions"),
            _ => String::new(),
        },
        cause = match (
            report.get("error").and_then(Value::as_str),
            report.get("cause").and_then(Value::as_str)
        ) {
            (Some(e), Some(c)) => format!("Error <b>{}</b>: {}", esc(e), esc(c)),
            (Some(e), None) => format!("Error <b>{}</b>", esc(e)),
            _ => String::new(),
        },
        mode = esc(text(&data, "mode")),
        acc = data["writesAccepted"],
        lost = data["writesLost"],
        refused = data["writesRefused"],
        freeze = data["freezeSeconds"],
        db = esc(text(&data, "survivingDatabase")),
    )
}
