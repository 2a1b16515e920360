//! CloudWatch: DMS latency datapoints per metric period, and alarm states (metric or composite).

use super::*;
use async_trait::async_trait;

#[async_trait]
impl Metrics for World {
    /// CloudWatch holds one datapoint per period, published once the period has ended and stamped
    /// with its start; DMS publishes only while the task replicates. The value is the latency at
    /// the period's end: `lag` for CDCLatencyTarget, `sourceLag` for CDCLatencySource.
    async fn dms_cdc_latency(&self, task_arn: &str) -> Result<Option<DmsLatency>, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "cloudwatch", "GetMetricData")?;
        let Some(spec) = self.spec.dms.tasks.iter().find(|t| t.arn == task_arn) else {
            return Ok(None);
        };
        let Some(s) = st.dms.get(task_arn) else {
            return Ok(None);
        };
        if self.dms_status(s, spec) != "running" {
            return Ok(None);
        }
        let start = s.started_at.unwrap_or(0.0);
        let spec = spec.clone();
        let period = self.spec.dms.metric_period_seconds as f64;
        let t = self.t();
        let period_start = ((t / period).floor() - 1.0) * period;
        // Nothing published until a period in which the task ran has ended.
        if period_start + period <= start {
            return Ok(None);
        }
        let since = period_start + period - start;
        let mut target = interpolate(&spec.lag, since);
        // With the application's writes modelled, what waits is counted: CDCIncomingChanges is
        // the most waiting in the period, and latency is 0 once nothing waits (latency is
        // measured from the oldest change not yet applied; source latency resets to 0 when the
        // source is idle — AWS DMS user guide, "Replication task metrics").
        self.settle(&mut st);
        let end = period_start + period;
        let incoming = match (
            self.backlog(&st, task_arn, period_start.max(start)),
            self.backlog(&st, task_arn, end),
        ) {
            (Some((a, _)), Some((b, idle))) => {
                if idle {
                    target = 0.0;
                }
                Some(a.max(b).round())
            }
            _ => None,
        };
        // CDCLatencySource may exceed CDCLatencyTarget: target latency is measured from the first
        // event waiting to commit on the target, so when capture stalls nothing waits and it can
        // read 0 while source latency grows (AWS DMS user guide, "Troubleshooting latency issues",
        // https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Troubleshooting_Latency.html).
        let source = if spec.source_lag.is_empty() {
            0.0
        } else {
            interpolate(&spec.source_lag, since)
        };
        let at =
            self.clock.epoch() + chrono::Duration::milliseconds((period_start * 1000.0) as i64);
        Ok(Some(DmsLatency {
            source_seconds: source,
            target_seconds: target,
            at,
            incoming_changes: incoming,
        }))
    }

    async fn alarm_states(&self, names: &[String]) -> Result<Vec<(String, AlarmState)>, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "cloudwatch", "DescribeAlarms")?;
        let t = self.t();
        let mut out = Vec::new();
        for n in names {
            let curve = self.spec.alarms.get(n).map(|a| a.states()).ok_or_else(|| {
                err(
                    "cloudwatch",
                    "ResourceNotFound",
                    format!("alarm {n} does not exist"),
                )
            })?;
            let state = match step_value(curve, t).as_deref() {
                Some("ALARM") => AlarmState::Alarm,
                Some("OK") => AlarmState::Ok,
                _ => AlarmState::InsufficientData,
            };
            out.push((n.clone(), state));
        }
        Ok(out)
    }
}
