//! Waves: the wave file (applications with dependencies under a concurrency cap and a window),
//! its validation (unknown names and cycles are errors that name them), the order a wave runs
//! in, and the planner that cuts a portfolio into waves.

use crate::plan::{from_value, parse_document, PlanError, Violation};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaveFile {
    pub wave: String,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// How often the running wave looks for ended applications and starts what may start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_interval_seconds: Option<u64>,
    /// The wave's execution hands over to a fresh one once its history passes this many events
    /// (default 20,000; Step Functions ends an execution at 25,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_after_events: Option<u32>,
    pub applications: Vec<WaveApplication>,
}

fn default_concurrency() -> u32 {
    3
}

/// The most applications a wave runs at once. Each runs as its own execution (no Map iteration
/// limit applies), so the bound is what one account sensibly carries at once: every running
/// cutover shares the account's Route 53 budget (five requests a second) through the run table.
pub const MAX_CONCURRENCY: u32 = 250;

/// A run id (execution name) for an application of a wave: letters, digits, '-' and '_', ≤ 80
/// (StartExecution's `name`). A longer one keeps its first 71 characters and ends in `-` and 8
/// hex digits of a hash of the whole name, so two names that share their first 80 characters
/// never share a run id (`load_wave` also refuses two applications whose ids would collide).
pub fn run_id_for(wave: &str, application: &str) -> String {
    let raw = format!("{wave}-{application}");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.len() <= 80 {
        return clean;
    }
    // FNV-1a, 64 bits: stable across versions and platforms, so a run id never changes.
    let hash = raw.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{}-{:08x}", &clean[..71], hash >> 32)
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Window {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.not_before && t < self.not_after
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaveApplication {
    /// Path of the application's plan, relative to the wave file.
    pub plan: String,
    /// Application names (the plans' `application`) that must complete first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

impl WaveFile {
    pub fn parse(text: &str, json: bool) -> Result<WaveFile, PlanError> {
        let w: WaveFile = from_value(parse_document(text, json)?)?;
        let mut v = Vec::new();
        if w.wave.trim().is_empty() || w.wave.len() > 64 {
            v.push(Violation {
                field: "wave".into(),
                message: "must be 1-64 characters".into(),
            });
        }
        if w.max_concurrency == 0 || w.max_concurrency > MAX_CONCURRENCY {
            v.push(Violation {
                field: "maxConcurrency".into(),
                message: format!("{} is outside 1..={MAX_CONCURRENCY}", w.max_concurrency),
            });
        }
        if let Some(i) = w.scheduling_interval_seconds {
            let range = crate::steps::SCHEDULING_INTERVAL_RANGE;
            if !range.contains(&i) {
                v.push(Violation {
                    field: "schedulingIntervalSeconds".into(),
                    message: format!("{i} is outside {}..={}", range.start(), range.end()),
                });
            }
        }
        if let Some(n) = w.handover_after_events {
            let range = crate::steps::HANDOVER_AFTER_EVENTS_RANGE;
            if !range.contains(&n) {
                v.push(Violation {
                    field: "handoverAfterEvents".into(),
                    message: format!("{n} is outside {}..={}", range.start(), range.end()),
                });
            }
        }
        if let Some(win) = &w.window {
            if win.not_after <= win.not_before {
                v.push(Violation {
                    field: "window.notAfter".into(),
                    message: "must be after window.notBefore".into(),
                });
            }
        }
        if w.applications.is_empty() {
            v.push(Violation {
                field: "applications".into(),
                message: "needs at least one application".into(),
            });
        }
        if v.is_empty() {
            Ok(w)
        } else {
            Err(PlanError::Invalid(v))
        }
    }
}

/// Checks a dependency graph given as name -> dependencies: every name known, no cycle.
/// Returns every problem, each naming the applications involved.
pub fn check_graph(
    deps: &BTreeMap<String, Vec<String>>,
    field: &dyn Fn(&str) -> String,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for (app, ds) in deps {
        for d in ds {
            if !deps.contains_key(d) {
                out.push(Violation {
                    field: field(app),
                    message: format!("depends on unknown application '{d}'"),
                });
            } else if d == app {
                out.push(Violation {
                    field: field(app),
                    message: "depends on itself".into(),
                });
            }
        }
    }
    for cycle in cycles(deps) {
        out.push(Violation {
            field: field(&cycle[0]),
            message: format!("dependency cycle: {}", cycle.join(" -> ")),
        });
    }
    out
}

/// Every elementary cycle found by a depth-first search, each written from its smallest name.
pub fn cycles(deps: &BTreeMap<String, Vec<String>>) -> Vec<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        n: &str,
        deps: &BTreeMap<String, Vec<String>>,
        mark: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
        found: &mut BTreeSet<Vec<String>>,
    ) {
        mark.insert(n.to_string(), Mark::Open);
        stack.push(n.to_string());
        for d in deps.get(n).into_iter().flatten() {
            if d == n || !deps.contains_key(d) {
                continue;
            }
            match mark.get(d).copied().unwrap_or(Mark::New) {
                Mark::New => visit(d, deps, mark, stack, found),
                Mark::Open => {
                    let start = stack.iter().position(|s| s == d).unwrap_or(0);
                    let mut cyc: Vec<String> = stack[start..].to_vec();
                    let min = cyc
                        .iter()
                        .enumerate()
                        .min_by(|a, b| a.1.cmp(b.1))
                        .map(|(i, _)| i)
                        .unwrap_or(0);
                    cyc.rotate_left(min);
                    let first = cyc[0].clone();
                    cyc.push(first);
                    found.insert(cyc);
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        mark.insert(n.to_string(), Mark::Done);
    }
    let mut mark = BTreeMap::new();
    let mut found = BTreeSet::new();
    for n in deps.keys() {
        if mark.get(n).copied().unwrap_or(Mark::New) == Mark::New {
            visit(n, deps, &mut mark, &mut Vec::new(), &mut found);
        }
    }
    found.into_iter().collect()
}

/// Everything that (transitively) depends on `failed`.
pub fn dependants(deps: &BTreeMap<String, Vec<String>>, failed: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut frontier = vec![failed.to_string()];
    while let Some(f) = frontier.pop() {
        for (app, ds) in deps {
            if ds.contains(&f) && out.insert(app.clone()) {
                frontier.push(app.clone());
            }
        }
    }
    out
}

/// A portfolio to plan waves from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Portfolio {
    #[serde(default = "default_wave_size")]
    pub max_wave_size: usize,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: u32,
    /// Prefix of the wave names: wave-1, wave-2, …
    #[serde(default = "default_prefix")]
    pub wave_prefix: String,
    pub applications: Vec<PortfolioApp>,
}

fn default_wave_size() -> usize {
    10
}
fn default_prefix() -> String {
    "wave".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Retire,
    Retain,
    Rehost,
    Relocate,
    Replatform,
    Repurchase,
    Refactor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortfolioApp {
    pub name: String,
    pub team: String,
    pub criticality: Criticality,
    pub strategy: Strategy,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Where the application's plan lives (default `plans/<name>.yaml`).
    #[serde(default)]
    pub plan: Option<String>,
}

/// An application the planner gives no wave, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Excluded {
    pub name: String,
    pub strategy: Strategy,
    pub reason: String,
}

/// The planner's answer: the waves, and every application left out with its reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WavePlan {
    pub waves: Vec<ProposedWave>,
    pub excluded: Vec<Excluded>,
}

impl Strategy {
    /// Why an application of this strategy gets no cutover, or None when it is migrated. The
    /// 7 Rs: retire decommissions, retain keeps the application where it is.
    pub fn exclusion(self) -> Option<&'static str> {
        match self {
            Strategy::Retire => Some("retire: the application is decommissioned, not moved"),
            Strategy::Retain => Some("retain: the application stays where it is for now"),
            _ => None,
        }
    }
}

/// One proposed wave: applications and why each one is where it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposedWave {
    pub wave: WaveFile,
    pub names: Vec<String>,
}

impl Portfolio {
    pub fn parse(text: &str, json: bool) -> Result<Portfolio, PlanError> {
        let p: Portfolio = from_value(parse_document(text, json)?)?;
        let mut v = Vec::new();
        if p.max_wave_size == 0 {
            v.push(Violation {
                field: "maxWaveSize".into(),
                message: "must be at least 1".into(),
            });
        }
        if p.max_concurrency == 0 || p.max_concurrency > MAX_CONCURRENCY {
            v.push(Violation {
                field: "maxConcurrency".into(),
                message: format!("{} is outside 1..={MAX_CONCURRENCY}", p.max_concurrency),
            });
        }
        let mut seen = BTreeSet::new();
        for (i, a) in p.applications.iter().enumerate() {
            if !seen.insert(a.name.clone()) {
                v.push(Violation {
                    field: format!("applications[{i}].name"),
                    message: format!("'{}' appears twice", a.name),
                });
            }
        }
        let deps: BTreeMap<String, Vec<String>> = p
            .applications
            .iter()
            .map(|a| (a.name.clone(), a.depends_on.clone()))
            .collect();
        let index: BTreeMap<String, usize> = p
            .applications
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), i))
            .collect();
        v.extend(check_graph(&deps, &|n| {
            format!(
                "applications[{}].dependsOn",
                index.get(n).copied().unwrap_or(0)
            )
        }));
        if v.is_empty() {
            Ok(p)
        } else {
            Err(PlanError::Invalid(v))
        }
    }

    /// Proposes waves: every dependency in an earlier wave, at most `maxWaveSize` applications
    /// and one application per team in each wave. Applications that unblock the most others go
    /// first; among equals, lower criticality first (learn on what hurts least), then by name.
    /// `retire` and `retain` applications are not migrated: they get no wave and are listed in
    /// `excluded` with the reason (and who still depends on them).
    pub fn plan(&self) -> WavePlan {
        let apps: BTreeMap<&str, &PortfolioApp> = self
            .applications
            .iter()
            .filter(|a| a.strategy.exclusion().is_none())
            .map(|a| (a.name.as_str(), a))
            .collect();
        let deps: BTreeMap<String, Vec<String>> = self
            .applications
            .iter()
            .map(|a| (a.name.clone(), a.depends_on.clone()))
            .collect();
        let unblocks = |n: &str| dependants(&deps, n).len();
        let excluded: Vec<Excluded> = self
            .applications
            .iter()
            .filter_map(|a| {
                let why = a.strategy.exclusion()?;
                let users: Vec<&str> = self
                    .applications
                    .iter()
                    .filter(|b| b.depends_on.contains(&a.name))
                    .map(|b| b.name.as_str())
                    .collect();
                let reason = if users.is_empty() {
                    why.to_string()
                } else {
                    format!(
                        "{why}; still depended on by {}: check they are planned without it",
                        users.join(", ")
                    )
                };
                Some(Excluded {
                    name: a.name.clone(),
                    strategy: a.strategy,
                    reason,
                })
            })
            .collect();
        // An excluded application needs no wave: its dependants may go at once.
        let mut placed: BTreeSet<&str> = self
            .applications
            .iter()
            .filter(|a| a.strategy.exclusion().is_some())
            .map(|a| a.name.as_str())
            .collect();
        let mut waves = Vec::new();
        while placed.len() < self.applications.len() {
            let mut ready: Vec<&PortfolioApp> = apps
                .values()
                .filter(|a| {
                    !placed.contains(a.name.as_str())
                        && a.depends_on.iter().all(|d| placed.contains(d.as_str()))
                })
                .copied()
                .collect();
            ready.sort_by(|a, b| {
                unblocks(&b.name)
                    .cmp(&unblocks(&a.name))
                    .then(a.criticality.cmp(&b.criticality))
                    .then(a.name.cmp(&b.name))
            });
            let mut teams = BTreeSet::new();
            let mut wave: Vec<&PortfolioApp> = Vec::new();
            for a in ready {
                if wave.len() < self.max_wave_size && teams.insert(a.team.as_str()) {
                    wave.push(a);
                }
            }
            if wave.is_empty() {
                // Only possible with a cycle, which parse() refuses.
                break;
            }
            for a in &wave {
                placed.insert(a.name.as_str());
            }
            let n = waves.len() + 1;
            let mut names: Vec<String> = wave.iter().map(|a| a.name.clone()).collect();
            names.sort();
            let applications = names
                .iter()
                .map(|n| {
                    let a = apps[n.as_str()];
                    WaveApplication {
                        plan: a
                            .plan
                            .clone()
                            .unwrap_or_else(|| format!("plans/{}.yaml", a.name)),
                        depends_on: vec![],
                    }
                })
                .collect();
            waves.push(ProposedWave {
                wave: WaveFile {
                    wave: format!("{}-{n}", self.wave_prefix),
                    max_concurrency: self.max_concurrency,
                    window: None,
                    scheduling_interval_seconds: None,
                    handover_after_events: None,
                    applications,
                },
                names,
            });
        }
        WavePlan { waves, excluded }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(a, ds)| (a.to_string(), ds.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    #[test]
    fn names_unknown_dependencies_and_cycles() {
        let g = graph(&[
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &["a"]),
            ("d", &["ghost"]),
        ]);
        let v = check_graph(&g, &|n| n.to_string());
        let msgs: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("unknown application 'ghost'")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("a -> b -> c -> a")),
            "{msgs:?}"
        );
    }

    #[test]
    fn transitive_dependants() {
        let g = graph(&[
            ("db", &[]),
            ("api", &["db"]),
            ("web", &["api"]),
            ("batch", &[]),
        ]);
        assert_eq!(
            dependants(&g, "db"),
            ["api", "web"].iter().map(|s| s.to_string()).collect()
        );
        assert!(dependants(&g, "batch").is_empty());
    }

    #[test]
    fn planner_respects_dependencies_size_and_teams() {
        let text = r#"
maxWaveSize: 2
applications:
  - {name: db, team: data, criticality: high, strategy: replatform}
  - {name: cache, team: data, criticality: low, strategy: rehost}
  - {name: api, team: core, criticality: high, strategy: rehost, dependsOn: [db]}
  - {name: web, team: web, criticality: medium, strategy: rehost, dependsOn: [api, cache]}
  - {name: reports, team: bi, criticality: low, strategy: rehost}
  - {name: mainframe, team: core, criticality: critical, strategy: retain}
"#;
        let p = Portfolio::parse(text, false).unwrap();
        let planned = p.plan();
        assert_eq!(
            planned.excluded,
            vec![Excluded {
                name: "mainframe".into(),
                strategy: Strategy::Retain,
                reason: "retain: the application stays where it is for now".into()
            }]
        );
        let waves: Vec<Vec<String>> = planned.waves.into_iter().map(|w| w.names).collect();
        let wave_of = |n: &str| waves.iter().position(|w| w.iter().any(|x| x == n)).unwrap();
        for (app, dep) in [("api", "db"), ("web", "api"), ("web", "cache")] {
            assert!(wave_of(dep) < wave_of(app), "{dep} before {app}: {waves:?}");
        }
        for w in &waves {
            assert!(w.len() <= 2);
        }
        assert!(
            !waves.iter().flatten().any(|n| n == "mainframe"),
            "retained apps are not migrated"
        );
        assert_eq!(waves.iter().map(Vec::len).sum::<usize>(), 5);
        // db and cache share a team: never in one wave.
        assert_ne!(wave_of("db"), wave_of("cache"));
    }

    #[test]
    fn retired_applications_get_no_wave_and_every_exclusion_has_a_reason() {
        let text = r#"
applications:
  - {name: legacy-fax, team: ops, criticality: low, strategy: retire}
  - {name: ledger, team: fin, criticality: high, strategy: retain}
  - {name: portal, team: web, criticality: medium, strategy: rehost, dependsOn: [legacy-fax]}
  - {name: crm, team: sales, criticality: medium, strategy: repurchase}
"#;
        let p = Portfolio::parse(text, false).unwrap();
        let planned = p.plan();
        let scheduled: Vec<&String> = planned.waves.iter().flat_map(|w| &w.names).collect();
        assert_eq!(
            scheduled,
            ["crm", "portal"],
            "retire and retain get no wave"
        );
        let reasons: BTreeMap<&str, &str> = planned
            .excluded
            .iter()
            .map(|e| (e.name.as_str(), e.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 2);
        assert!(reasons["legacy-fax"].starts_with("retire:"));
        assert!(
            reasons["legacy-fax"].contains("still depended on by portal"),
            "{reasons:?}"
        );
        assert!(reasons["ledger"].starts_with("retain:"));
    }

    #[test]
    fn planner_refuses_cycles_instead_of_breaking_them() {
        let text = "applications: [{name: a, team: t1, criticality: low, strategy: rehost, dependsOn: [b]}, {name: b, team: t2, criticality: low, strategy: rehost, dependsOn: [a]}]";
        let e = Portfolio::parse(text, false).unwrap_err();
        assert!(e.to_string().contains("a -> b -> a"), "{e}");
    }
}
