//! The one list of deployed functions: each with the state machine substitution it is known by
//! and the ports it uses. The Lambda wiring (which clients a function builds), each function's
//! cargo features and the template's IAM checks all derive from this list, and a test fails when
//! they disagree, so a function cannot ship without a port its code calls.

/// A port a function may use besides the run store, which every function has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Port {
    Router,
    /// Elastic Load Balancing: the ALB router (crate::alb).
    LoadBalancer,
    Replication,
    Metrics,
    Probe,
    Notifier,
    Callbacks,
    Schedules,
    Hooks,
    Executions,
    /// Secrets Manager and Parameter Store: the credentials probes and hooks send.
    Secrets,
    /// AWS KMS: task tokens sealed before they are stored, opened to send a callback.
    Vault,
    /// STS: the resources of other accounts, through the roles plan sections name
    /// (crate::accounts). Every function reaching Route 53, ELBv2, DMS/MGN or CloudWatch has it.
    Accounts,
    /// EventBridge: the events of runs (crate::events).
    Bus,
}

impl Port {
    pub const ALL: [Port; 14] = [
        Port::Router,
        Port::LoadBalancer,
        Port::Replication,
        Port::Metrics,
        Port::Probe,
        Port::Notifier,
        Port::Callbacks,
        Port::Schedules,
        Port::Hooks,
        Port::Executions,
        Port::Secrets,
        Port::Vault,
        Port::Accounts,
        Port::Bus,
    ];

    /// The `cutover-lambda` cargo feature that links this port's SDK client.
    pub fn feature(self) -> &'static str {
        match self {
            Port::Router => "route53",
            Port::LoadBalancer => "elbv2",
            Port::Replication => "replication",
            Port::Metrics => "metrics",
            Port::Probe => "probe",
            Port::Notifier => "notifier",
            Port::Callbacks => "callbacks",
            Port::Schedules => "scheduler",
            Port::Hooks => "hooks",
            Port::Executions => "executions",
            Port::Secrets => "secrets",
            Port::Vault => "vault",
            Port::Accounts => "accounts",
            Port::Bus => "bus",
        }
    }

    /// The environment variables a function using this port cannot start without; the
    /// template must declare each for every such function (a template test and the rehearsal
    /// check it), and the Lambda init fails naming the first one missing.
    pub fn required_env(self) -> &'static [&'static str] {
        match self {
            Port::Notifier => &["TOPIC_ARN"],
            Port::Executions => &["CUTOVER_STATE_MACHINE_ARN"],
            Port::Schedules => &["WAVE_STATE_MACHINE_ARN", "WAVE_SCHEDULER_ROLE_ARN"],
            Port::Vault => &["TOKEN_KEY_ARN"],
            _ => &[],
        }
    }
}

/// What every function needs: the run table.
pub const COMMON_ENV: &[&str] = &["TABLE_NAME"];

/// Which state machine invokes a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    Cutover,
    Wave,
    /// Invoked by API Gateway, not by a state machine.
    Api,
    /// Invoked by an EventBridge rule.
    Events,
    /// Invoked by the run table's DynamoDB stream.
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The Lambda's name, its crate under `functions/` and its bin.
    pub name: &'static str,
    pub machine: Machine,
    /// The `DefinitionSubstitutions` key the machine references it by.
    pub substitution: Option<&'static str>,
    pub ports: &'static [Port],
}

impl FunctionSpec {
    pub fn uses(&self, port: Port) -> bool {
        self.ports.contains(&port)
    }

    /// Every environment variable this function cannot start without, derived from its ports.
    pub fn required_env(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = COMMON_ENV.to_vec();
        for p in self.ports {
            for n in p.required_env() {
                if !names.contains(n) {
                    names.push(n);
                }
            }
        }
        names
    }
}

const fn step(
    name: &'static str,
    machine: Machine,
    substitution: &'static str,
    ports: &'static [Port],
) -> FunctionSpec {
    FunctionSpec {
        name,
        machine,
        substitution: Some(substitution),
        ports,
    }
}

use Machine::*;
use Port::*;

pub const REGISTRY: &[FunctionSpec] = &[
    step(
        "validate-cutover",
        Cutover,
        "ValidateCutoverFunctionArn",
        &[
            Router,
            LoadBalancer,
            Replication,
            Metrics,
            Probe,
            Notifier,
            Executions,
            Secrets,
            Accounts,
        ],
    ),
    step(
        "start-replication",
        Cutover,
        "StartReplicationFunctionArn",
        &[Replication, Accounts],
    ),
    step(
        "check-replication-lag",
        Cutover,
        "CheckReplicationLagFunctionArn",
        &[Replication, Metrics, Accounts],
    ),
    step(
        "check-launch",
        Cutover,
        "CheckLaunchFunctionArn",
        &[Replication, Metrics, Probe, Secrets, Accounts],
    ),
    step(
        "shift-traffic",
        Cutover,
        "ShiftTrafficFunctionArn",
        &[Router, LoadBalancer, Accounts],
    ),
    step(
        "check-dns-sync",
        Cutover,
        "CheckDnsSyncFunctionArn",
        &[Router, Accounts],
    ),
    step(
        "run-health-check",
        Cutover,
        "RunHealthCheckFunctionArn",
        &[LoadBalancer, Replication, Metrics, Probe, Secrets, Accounts],
    ),
    step(
        "rollback-cutover",
        Cutover,
        "RollbackCutoverFunctionArn",
        &[Router, LoadBalancer, Accounts],
    ),
    step(
        "request-approval",
        Cutover,
        "RequestApprovalFunctionArn",
        &[Notifier, Vault],
    ),
    step(
        "finalize-cutover",
        Cutover,
        "FinalizeCutoverFunctionArn",
        &[Replication, Accounts],
    ),
    // Freeze, drain, switch, unfreeze: the data cutover (docs/data.md).
    step(
        "data-cutover",
        Cutover,
        "DataCutoverFunctionArn",
        &[Hooks, Replication, Metrics, Notifier, Secrets, Accounts],
    ),
    step("close-run", Cutover, "CloseRunFunctionArn", &[Notifier]),
    step("start-wave", Wave, "StartWaveFunctionArn", &[Notifier]),
    step("next-wave-round", Wave, "NextWaveRoundFunctionArn", &[]),
    step("close-wave", Wave, "CloseWaveFunctionArn", &[]),
    // The safety net: unfreezes writes, restores DNS and closes a run whose execution ended
    // outside its paths; on a schedule, sweeps active runs (stuck, abandoned, expiring gates).
    FunctionSpec {
        name: "reconcile-run",
        machine: Events,
        substitution: None,
        ports: &[
            Router,
            LoadBalancer,
            Notifier,
            Hooks,
            Executions,
            Secrets,
            Accounts,
        ],
    },
    // The run table's stream: every phase change, gate and outcome to EventBridge.
    FunctionSpec {
        name: "publish-events",
        machine: Stream,
        substitution: None,
        ports: &[Bus],
    },
    // Answers gates (SendTaskSuccess/Failure) and schedules waves.
    FunctionSpec {
        name: "approval-api",
        machine: Api,
        substitution: None,
        ports: &[Callbacks, Schedules, Vault],
    },
];

/// The registry entry of a function; None for a name no function has.
pub fn function(name: &str) -> Option<&'static FunctionSpec> {
    REGISTRY.iter().find(|f| f.name == name)
}

/// `(function, substitution key)` of one machine's functions.
pub fn substitutions_of(machine: Machine) -> impl Iterator<Item = (&'static str, &'static str)> {
    REGISTRY
        .iter()
        .filter(move |f| f.machine == machine)
        .filter_map(|f| f.substitution.map(|s| (f.name, s)))
}
