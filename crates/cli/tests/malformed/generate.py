#!/usr/bin/env python3
"""Writes the malformed-input corpus: plans, worlds and waves that must each be refused with exit 2,
naming the file and the field. Each case is a mutation of a valid example (or raw bytes), listed in
cases.tsv as: kind, file, the text the error must contain.

Regenerate with: python3 crates/cli/tests/malformed/generate.py (needs PyYAML)."""

import copy
import json
import os

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../../../.."))


def load(path):
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


PLAN = load("examples/dms-happy-path/plan.yaml")
DATA_PLAN = load("examples/data-blue-until-switch/plan.yaml")
MGN_PLAN = load("examples/mgn-happy-path/plan.yaml")
WORLD = load("examples/dms-happy-path/world.yaml")

MISSING = object()


def mutate(base, path, value):
    doc = copy.deepcopy(base)
    parts = path.split(".")
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[int(p)]
        else:
            cur = cur.setdefault(p, {})
    last = parts[-1]
    if isinstance(cur, list):
        last = int(last)
    if value is MISSING:
        del cur[last]
    else:
        cur[last] = value
    return doc


cases = []  # (kind, name, text, expected)


def add(kind, name, doc, expected, as_json=False):
    ext = "json" if as_json else "yaml"
    text = json.dumps(doc, indent=2) if as_json else yaml.safe_dump(doc, sort_keys=False)
    cases.append((kind, f"{name}.{ext}", text, expected))


def raw(kind, name, text, expected):
    cases.append((kind, name, text, expected))


plan_mutations = [
    ("application", "", "application"),
    ("application", "Orders", "application"),
    ("application", "a" * 60, "application"),
    ("application", 123, "application"),
    ("application", None, "application"),
    ("application", MISSING, "application"),
    ("wave", "bad wave!", "wave"),
    ("replication.kind", "rds", "replication.kind"),
    ("replication.kind", MISSING, "replication"),
    ("replication.taskArn", "arn:bad", "replication.taskArn"),
    ("replication.taskArn", MISSING, "replication.taskArn"),
    ("replication.sourceServerId", "s-0123456789abcdef0", "replication.sourceServerId"),
    ("replication.maxLagSeconds", -1, "replication.maxLagSeconds"),
    ("replication.maxLagSeconds", 0, "replication.maxLagSeconds"),
    ("replication.maxLagSeconds", 1e12, "replication.maxLagSeconds"),
    ("replication.maxLagSeconds", "fast", "replication.maxLagSeconds"),
    ("replication.maxLagSeconds", 86401, "replication.maxLagSeconds"),
    ("replication.maxLagSeconds", MISSING, "maxLagSeconds"),
    ("replication.stableSamples", 0, "replication.stableSamples"),
    ("replication.stableSamples", 1001, "replication.stableSamples"),
    ("replication.stableSamples", -3, "replication.stableSamples"),
    ("replication.stableSamples", 1.5, "replication.stableSamples"),
    ("replication.sampleIntervalSeconds", 0, "replication.sampleIntervalSeconds"),
    ("replication.sampleIntervalSeconds", 3601, "replication.sampleIntervalSeconds"),
    ("replication.deadlineSeconds", 1, "replication.deadlineSeconds"),
    ("replication.deadlineSeconds", 604801, "replication.deadlineSeconds"),
    ("replication.deadlineSeconds", 10**20, "replication.deadlineSeconds"),
    ("replication.launchDeadlineSeconds", 5, "replication.launchDeadlineSeconds"),
    ("dns.hostedZoneId", "/hostedzone/Z0123456789", "dns.hostedZoneId"),
    ("dns.hostedZoneId", "", "dns.hostedZoneId"),
    ("dns.hostedZoneId", "z-lower", "dns.hostedZoneId"),
    ("dns.recordName", "not a name!", "dns.recordName"),
    ("dns.recordName", "", "dns.recordName"),
    ("dns.recordName", "-bad-.example.com", "dns.recordName"),
    ("dns.recordType", "MX", "dns.recordType"),
    ("dns.recordType", "TXT", "dns.recordType"),
    ("dns.ttl", -5, "dns.ttl"),
    ("dns.ttl", 999999999, "dns.ttl"),
    ("dns.maxOriginalTtlSeconds", 10, "dns.maxOriginalTtlSeconds"),
    ("dns.finalForm", "round", "dns.finalForm"),
    ("dns.blue.value", "", "dns.blue.value"),
    ("dns.blue.value", MISSING, "dns.blue"),
    ("dns.blue.alias", {"hostedZoneId": "Z35SXDOTRQ7X7K", "dnsName": "lb.example.com"}, "dns.blue"),
    ("dns.blue.alias", {"hostedZoneId": "Z35SXDOTRQ7X7K"}, "dns.blue.alias"),
    ("dns.green.setIdentifier", "blue", "dns.green.setIdentifier"),
    ("dns.green.value", "blue-lb.example.com", "dns.green.value"),
    ("dns.blue.setIdentifier", "", "dns.blue.setIdentifier"),
    ("dns.blue.setIdentifier", "x" * 129, "dns.blue.setIdentifier"),
    ("dns.blue.healthCheckId", "not-a-uuid", "dns.blue.healthCheckId"),
    ("dns.blue.extra", 1, "dns.blue"),
    ("traffic.steps", [], "traffic.steps"),
    ("traffic.steps", "10,50,100", "traffic.steps"),
    ("traffic.steps", [{"weight": 50, "bakeSeconds": 60}, {"weight": 10, "bakeSeconds": 60}, {"weight": 100, "bakeSeconds": 60}], "traffic.steps[1].weight"),
    ("traffic.steps.0.weight", 0, "traffic.steps[0].weight"),
    ("traffic.steps.2.weight", 101, "traffic.steps[2].weight"),
    ("traffic.steps.2.weight", 90, "traffic.steps[2].weight"),
    ("traffic.steps.0.weight", -10, "traffic.steps[0].weight"),
    ("traffic.steps.0.bakeSeconds", 0, "traffic.steps[0].bakeSeconds"),
    ("traffic.steps.0.bakeSeconds", 604801, "traffic.steps[0].bakeSeconds"),
    ("traffic.steps.0.bakeSeconds", 10**30, "traffic.steps[0].bakeSeconds"),
    ("traffic.steps.0.approval", "BAD GATE", "traffic.steps[0].approval"),
    ("traffic.steps.0.approval", "finalize", "traffic.steps[0].approval"),
    ("traffic.steps.0.approval", "before-50", "traffic.steps[1].approval"),
    ("traffic.steps.0.approval", "rollback-after-switch", "traffic.steps[0].approval"),
    ("health.intervalSeconds", 0, "health.intervalSeconds"),
    ("health.intervalSeconds", 3601, "health.intervalSeconds"),
    ("health.failureThreshold", 0, "health.failureThreshold"),
    ("health.failureThreshold", 101, "health.failureThreshold"),
    ("health.failureLimit", 0, "health.failureLimit"),
    ("health.failureLimit", 1, "health.failureLimit"),
    ("health.failureLimit", 1001, "health.failureLimit"),
    ("health.http", [{"url": "ftp://green.example.com/health"}], "health.http[0].url"),
    ("health.http", [{"url": "not a url"}], "health.http[0].url"),
    ("health.http", [{"url": "https://green.example.com/health", "expectStatus": 99}], "health.http[0].expectStatus"),
    ("health.http", [{"url": "https://green.example.com/health", "expectStatus": 600}], "health.http[0].expectStatus"),
    ("health.alarms", [""], "health.alarms[0]"),
    ("approvals.expiresSeconds", 10, "approvals.expiresSeconds"),
    ("approvals.expiresSeconds", 10**9, "approvals.expiresSeconds"),
    ("approvals.twoPersonGates", ["no-such-gate"], "approvals.twoPersonGates[0]"),
    ("rollback.budgetSeconds", 10, "rollback.budgetSeconds"),
    ("rollback.budgetSeconds", 100000, "rollback.budgetSeconds"),
    ("rollback.retries", 3, "rollback"),
    ("finalize.enabled", "yes please", "finalize.enabled"),
    ("surprise", True, "surprise"),
]
for i, (path, value, expected) in enumerate(plan_mutations):
    add("plan", f"plan-{i:03d}-{path.replace('.', '-')}", mutate(PLAN, path, value), expected)

# Both signals gone: the health section names what is missing.
add("plan", "plan-health-no-signal", mutate(mutate(PLAN, "health.http", []), "health.alarms", []), "health")
# A worst case above Step Functions' history limit.
add("plan", "plan-history-limit", mutate(mutate(PLAN, "replication.deadlineSeconds", 604800), "replication.sampleIntervalSeconds", 1), "replication.deadlineSeconds")
# The same mutations as JSON files.
for i, (path, value, expected) in enumerate(plan_mutations[:12]):
    add("plan", f"plan-json-{i:03d}", mutate(PLAN, path, value), expected, as_json=True)

data_mutations = [
    ("data.writes", "sometimes", "data.writes"),
    ("data.freeze", MISSING, "data.freeze"),
    ("data.switch", {"lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:x", "url": "https://x.example.com"}, "data.switch"),
    ("data.unfreeze", {"url": "http://ops.example.com/off"}, "data.unfreeze.url"),
    ("data.unfreeze", {"url": "https://ops.example.com/off", "method": "GET"}, "data.unfreeze.method"),
    ("data.unfreeze", {"url": "https://ops.example.com/off", "auth": "basic"}, "data.unfreeze.auth"),
    ("data.freeze", {"lambdaArn": "orders-maintenance-on"}, "data.freeze.lambdaArn"),
    ("data.freeze", {"lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:x", "timeoutSeconds": 0}, "data.freeze.timeoutSeconds"),
    ("data.freeze", {"lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:x", "method": "POST"}, "data.freeze.method"),
    ("data.maxFreezeSeconds", 5, "data.maxFreezeSeconds"),
    ("data.maxFreezeSeconds", 10**7, "data.maxFreezeSeconds"),
    ("data.drainPollSeconds", 0, "data.drainPollSeconds"),
    ("data.approval", "rollback-after-switch", "data.approval"),
    ("data.approval", "Not A Gate", "data.approval"),
    ("data.reverseReplication", {"taskArn": "arn:aws:dms:us-east-1:123456789012:task:ORDERS"}, "data.reverseReplication.taskArn"),
    ("data.reverseReplication", {"taskArn": "nope"}, "data.reverseReplication.taskArn"),
    ("data.extra", 1, "data"),
]
for i, (path, value, expected) in enumerate(data_mutations):
    add("plan", f"plan-data-{i:03d}", mutate(DATA_PLAN, path, value), expected)
add("plan", "plan-data-mgn", dict(MGN_PLAN, data=DATA_PLAN["data"]), "data.writes")
add("plan", "plan-data-unmanaged-hooks", mutate(DATA_PLAN, "data.writes", "unmanaged"), "data.freeze")

# Probes and hooks never reach the function's own machine or platform (docs/security.md).
ssrf_urls = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.170.2/v2/credentials",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
    "http://localhost/health",
    "http://0.0.0.0/health",
]
for i, u in enumerate(ssrf_urls):
    add("plan", f"plan-ssrf-{i:03d}", mutate(PLAN, "health.http", [{"url": u, "expectStatus": 200}]), "health.http[0].url")
add("plan", "plan-ssrf-hook-token", mutate(DATA_PLAN, "data.freeze", {"url": "https://169.254.169.254/latest/api/token", "method": "PUT"}), "data.freeze.url")
add("plan", "plan-ssrf-hook-partition", mutate(DATA_PLAN, "data.freeze", {"lambdaArn": "arn:awsfoo:lambda:us-east-1:123456789012:function:x"}), "data.freeze.lambdaArn")

# A plan carries no credential: not in a URL, not as an inline header (docs/security.md).
SM = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/probe-AbCdEf"
for i, u in enumerate([
    "https://probe:hunter2@green.example.com/health",
    "https://t0ken@green.example.com/health",
    "https://green.example.com/health?region=eu&pass=x",
    "https://green.example.com/health?jwt=eyJ",
    "https://green.example.com/health#access_token=x",
]):
    add("plan", f"plan-credential-url-{i:03d}", mutate(PLAN, "health.http", [{"url": u, "expectStatus": 200}]), "health.http[0].url")
add("plan", "plan-credential-hook-url", mutate(DATA_PLAN, "data.freeze", {"url": "https://hooks.example.com/freeze?api_key=x"}), "data.freeze.url")
add("plan", "plan-header-inline", mutate(PLAN, "health.http", [{"url": "https://green.example.com/health", "headers": {"Authorization": "Bearer abc"}}]), "health.http[0].headers.Authorization")
add("plan", "plan-header-bad-arn", mutate(PLAN, "health.http", [{"url": "https://green.example.com/health", "headers": {"X-Key": {"secretArn": "arn:aws:s3:::bucket/key"}}}]), "health.http[0].headers.X-Key.secretArn")
add("plan", "plan-header-host", mutate(PLAN, "health.http", [{"url": "https://green.example.com/health", "headers": {"Host": {"secretArn": SM}}}]), "health.http[0].headers.Host")
add("plan", "plan-header-signed-hook", mutate(DATA_PLAN, "data.freeze", {"url": "https://hooks.example.com/freeze", "headers": {"Authorization": {"secretArn": SM}}}), "data.freeze.headers.Authorization")
add("plan", "plan-header-lambda-hook", mutate(DATA_PLAN, "data.freeze", {"lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:x", "headers": {"X-Key": {"secretArn": SM}}}), "data.freeze.headers")

plan_text = open(os.path.join(ROOT, "examples/dms-happy-path/plan.yaml")).read()
raw("plan", "plan-raw-empty.yaml", "", "(root)")
raw("plan", "plan-raw-only-separator.yaml", "---\n", "(root)")
raw("plan", "plan-raw-list.yaml", "[1, 2, 3]\n", "(root)")
raw("plan", "plan-raw-scalar.yaml", "just words\n", "(root)")
raw("plan", "plan-raw-unclosed.yaml", "application: [orders\n", "YAML")
raw("plan", "plan-raw-tabs.yaml", "application:\n\t- orders\n", "YAML")
raw("plan", "plan-raw-duplicate-top.yaml", plan_text + "application: other\n", "application")
raw("plan", "plan-raw-duplicate-nested.yaml", plan_text.replace("  maxLagSeconds: 30\n", "  maxLagSeconds: 30\n  maxLagSeconds: 9000\n"), "maxLagSeconds")
raw("plan", "plan-raw-nan.yaml", plan_text.replace("maxLagSeconds: 30", "maxLagSeconds: .nan"), "maxLagSeconds")
raw("plan", "plan-raw-inf.yaml", plan_text.replace("maxLagSeconds: 30", "maxLagSeconds: .inf"), "maxLagSeconds")
raw("plan", "plan-raw-huge-int.yaml", plan_text.replace("bakeSeconds: 600}", "bakeSeconds: 99999999999999999999999999}", 1), "bakeSeconds")
raw("plan", "plan-raw-deep.yaml", "application: " + "[" * 5000 + "]" * 5000 + "\n", "YAML")
raw("plan", "plan-raw-long-name.yaml", plan_text.replace("application: orders", "application: " + "o" * 20000), "application")
raw("plan", "plan-raw-anchor-bomb.yaml", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n", "YAML")
raw("plan", "plan-raw-binary.yaml", "\x00\x01\x02\xff garbage \x7f", "not valid YAML")
raw("plan", "plan-raw-invalid-utf8.yaml", b"application: \xc3\x28 orders\n", "stream did not contain valid UTF-8")
raw("plan", "plan-raw-json-trailing-comma.json", '{"application": "orders",}', "JSON")
raw("plan", "plan-raw-json-comment.json", '// a comment\n{"application": "orders"}', "JSON")
raw("plan", "plan-raw-json-duplicate.json", json.dumps(PLAN)[:-1] + ', "application": "other"}', "application")
raw("plan", "plan-raw-json-bom-garbage.json", "\ufeff{nope}", "JSON")
raw("plan", "plan-raw-json-array.json", "[]", "(root)")

world_mutations = [
    ("secrets", {"not-an-arn": "x"}, "secrets.not-an-arn"),
    ("secrets", {"arn:aws:secretsmanager:us-east-1:123456789012:secret:big": "x" * 70000}, "secrets.arn:aws:secretsmanager"),
    ("requireHeaders", {"no url": {"X": "y"}}, "requireHeaders.no url"),
    ("startTime", "yesterday", "startTime"),
    ("route53.requestsPerSecond", 0, "route53.requestsPerSecond"),
    ("route53.requestsPerSecond", -1, "route53.requestsPerSecond"),
    ("route53.zones.0.id", "bad", "route53.zones[0].id"),
    ("route53.zones.0.records.0.name", "orders.other.com.", "route53.zones[0].records[0].name"),
    ("route53.zones.0.records.0.ttl", MISSING, "route53.zones[0].records[0].ttl"),
    ("route53.zones.0.records.0.values", [], "route53.zones[0].records[0].values"),
    ("route53.zones.0.records.0.weight", 300, "route53.zones[0].records[0]"),
    ("route53.zones.0.records.0.type", "MX", "route53.zones[0].records[0].type"),
    ("route53.zones.0.records.0.aliasTarget", {"hostedZoneId": "Z35SXDOTRQ7X7K", "dnsName": "lb.example.com."}, "route53.zones[0].records[0].aliasTarget"),
    ("dms.metricPeriodSeconds", 0, "dms.metricPeriodSeconds"),
    ("dms.tasks.0.status", "paused", "dms.tasks[0].status"),
    ("dms.tasks.0.migrationType", "sometimes", "dms.tasks[0].migrationType"),
    ("dms.tasks.0.lag", [], "dms.tasks[0].lag"),
    ("dms.tasks.0.lag", [[0, -5]], "dms.tasks[0].lag"),
    ("dms.tasks.0.lag", [[10, 5], [5, 1]], "dms.tasks[0].lag"),
    ("dms.tasks.0.lag", "fast", "dms.tasks[0].lag"),
    ("dms.tasks.0.sourceLag", [[0, -5]], "dms.tasks[0].sourceLag"),
    ("dms.tasks.0.targetLag", [[0, 5]], "dms.tasks[0].targetLag"),
    ("dms.tasks.0.tables", [{"name": "t", "state": "Loading"}], "dms.tasks[0].tables[0].state"),
    ("dms.tasks.0.tables", [{"name": "t", "validationState": "fine"}], "dms.tasks[0].tables[0].validationState"),
    ("dms.tasks.0.carries", "sideways", "dms.tasks[0].carries"),
    ("http", {"not a url": [[0, 200]]}, "http"),
    ("http", {"https://green.example.com/health": [[0, 700]]}, "http"),
    ("http", {"https://green.example.com/health": [[5, 200], [1, 503]]}, "http"),
    ("alarms", {"orders-green-5xx": [[0, "RED"]]}, "alarms"),
    ("approvals", [{"gate": "before-50", "decision": "maybe", "by": "alice"}], "approvals[0].decision"),
    ("approvals", [{"gate": "before-50", "decision": "approve", "by": " "}], "approvals[0].by"),
    ("operator", [{"afterSeconds": 10, "action": "reboot", "by": "ops"}], "operator[0].action"),
    ("faults", [{"operation": "route53.Everything", "error": "Throttling", "times": 1}], "faults[0].operation"),
    ("faults", [{"operation": "route53.GetChange", "error": "Teapot", "times": 1}], "faults[0].error"),
    ("app", {"writesPerSecond": -1}, "app.writesPerSecond"),
    ("app", {"writesPerSecond": 10, "record": "nowhere.example.com"}, "app.record"),
    ("app", {"writesPerSecond": 10, "greenWritesTo": "purple"}, "app.greenWritesTo"),
    ("hooks", {"arn:aws:lambda:us-east-1:123456789012:function:x": [[0, "slow"]]}, "hooks"),
    ("mgn", {"servers": [{"id": "s-0123456789abcdef0", "lifecycle": "FLYING", "replicationState": "CONTINUOUS", "lag": [[0, 1]]}]}, "mgn.servers[0].lifecycle"),
    ("mgn", {"servers": [{"id": "s-0123456789abcdef0", "lifecycle": "READY_FOR_CUTOVER", "replicationState": "CONTINUOUS", "lag": [[0, 1]], "launchSeconds": 0}]}, "mgn.servers[0].launchSeconds"),
    ("surprise", 1, "surprise"),
    # Numbers beyond any run's reach are refused, never a panic.
    ("approvals", [{"gate": "before-50", "decision": "approve", "by": "alice", "afterSeconds": 1e300}], "approvals[0].afterSeconds"),
    ("operator", [{"afterSeconds": 1e300, "action": "abort", "by": "ops"}], "operator[0].afterSeconds"),
    ("faults", [{"operation": "route53.GetChange", "error": "Throttling", "times": 1, "afterSeconds": 1e300}], "faults[0].afterSeconds"),
    ("dms.tasks.0.stopAfterSeconds", 1e300, "dms.tasks[0].stopAfterSeconds"),
    ("dms.tasks.0.lag", [[0, 5], [1e300, 1]], "dms.tasks[0].lag"),
    ("route53.propagationSeconds", 18446744073709551615, "route53.propagationSeconds"),
]
for i, (path, value, expected) in enumerate(world_mutations):
    add("world", f"world-{i:03d}", mutate(WORLD, path, value), expected)
raw("world", "world-raw-empty-list.yaml", "[]\n", "(root)")
raw("world", "world-raw-unclosed.yaml", "route53: {zones: [\n", "YAML")
raw("world", "world-raw-duplicate.yaml", "http: {}\nhttp: {}\n", "http")

PLANS = "../../../../../examples/wave-12/plans"
wave = {"wave": "wave-x", "maxConcurrency": 2, "applications": [{"plan": f"{PLANS}/db-core.yaml"}, {"plan": f"{PLANS}/catalog.yaml", "dependsOn": ["db-core"]}]}
wave_mutations = [
    ("wave", "", "wave"),
    ("maxConcurrency", 0, "maxConcurrency"),
    ("maxConcurrency", -2, "maxConcurrency"),
    ("applications", [], "applications"),
    ("applications.1.dependsOn", ["nobody"], "nobody"),
    ("applications.0.dependsOn", ["catalog"], "cycle"),
    ("applications.0.plan", f"{PLANS}/missing.yaml", "missing.yaml"),
    ("applications.0.extra", True, "applications[0]"),
    ("surprise", 1, "surprise"),
]
for i, (path, value, expected) in enumerate(wave_mutations):
    add("wave", f"wave-{i:03d}", mutate(wave, path, value), expected)

out_dir = os.path.join(HERE, "cases")
os.makedirs(out_dir, exist_ok=True)
for f in os.listdir(out_dir):
    os.remove(os.path.join(out_dir, f))
with open(os.path.join(HERE, "cases.tsv"), "w") as tsv:
    tsv.write("# kind\tfile\tthe error names\n")
    for kind, name, text, expected in cases:
        if isinstance(text, bytes):
            with open(os.path.join(out_dir, name), "wb") as f:
                f.write(text)
        else:
            with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
                f.write(text)
        tsv.write(f"{kind}\t{name}\t{expected}\n")
print(f"{len(cases)} cases")
