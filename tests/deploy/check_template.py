"""Rules for template.yaml that neither cfn-lint nor sam validate know about.

The deployment must agree with the code: every environment variable the
template sets is one the code reads (shared/segments-infra/src/config.rs) and
every variable the code requires is set; an SQS batch is no larger than the
number of messages a function handles at once (BATCH_CONCURRENCY in
shared/segments-handlers/src/entry.rs), so the timeout bounds each message.
And the usual SQS/Lambda rules: partial batch failures, a dead-letter queue
that keeps messages longer than its source, visibility timeouts at least 6x the
reader's timeout, arm64 al2023 cargo-lambda builds, a log group with retention
per function, secrets NoEcho, each function sending only to its own queues.
Run with the project venv's python (it has cfn-lint's template decoder).
"""

import re
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
CONFIG_RS = ROOT / "shared/segments-infra/src/config.rs"
ENTRY_RS = ROOT / "shared/segments-handlers/src/entry.rs"

BINARIES = {
    "CreateSegmentFunction": "create-segment",
    "CheckBigQueryJobFunction": "check-bigquery-job",
    "SegmentCronjobFunction": "segment-cronjob",
    "ReportWithSegmentFunction": "report-with-segment",
}
# The queues of this stack each function sends to (SQSSendMessagePolicy), and
# the variables only some functions need (optional in config.rs, required by
# their handler).
SENDS_TO = {
    "CreateSegmentFunction": {"CheckJobQueue", "CreateSegmentDeadLetterQueue"},
    "CheckBigQueryJobFunction": {"CheckJobQueue", "CheckJobDeadLetterQueue"},
    "SegmentCronjobFunction": {"CronjobQueue", "CronjobDeadLetterQueue"},
    "ReportWithSegmentFunction": {"CheckJobQueue", "ReportDeadLetterQueue"},
}
# Every function dead-letters a permanent failure itself (DEAD_LETTER_QUEUE_URL,
# checked below to be the DLQ of the queue it reads).
NEEDS = {
    "CreateSegmentFunction": {"DEAD_LETTER_QUEUE_URL"},
    "CheckBigQueryJobFunction": {"DEAD_LETTER_QUEUE_URL"},
    "SegmentCronjobFunction": {"CRONJOB_QUEUE_URL", "STATIC_BUCKET", "DEAD_LETTER_QUEUE_URL"},
    "ReportWithSegmentFunction": {"DEAD_LETTER_QUEUE_URL"},
}
SECRETS = {"DatabaseUrl", "RedisUrl", "GoogleServiceAccountKey", "PusherSecret"}
# Read by tracing's EnvFilter, not by config.rs.
OTHER_VARS = {"RUST_LOG"}

template, errors = decode(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "template.yaml"))
if errors:
    sys.exit(f"template does not decode: {errors}")
res = template["Resources"]
params = template.get("Parameters", {})
glob = template.get("Globals", {}).get("Function", {})
problems = []


def ref_name(v):
    """The logical id behind !GetAtt X.Arn / !GetAtt X.QueueName / !Ref X."""
    if isinstance(v, dict):
        if "Fn::GetAtt" in v:
            g = v["Fn::GetAtt"]
            return g[0] if isinstance(g, list) else g.split(".")[0]
        if "Ref" in v:
            return v["Ref"]
    return None


config = CONFIG_RS.read_text()
read_vars = {m[1] for m in re.finditer(r'\.(?:req|opt|num)\(\s*"([A-Z][A-Z0-9_]*)"', config)}
required_vars = {m[1] for m in re.finditer(r'\.req\(\s*"([A-Z][A-Z0-9_]*)"', config)}
if "DATABASE_URL" not in required_vars:
    problems.append(f"{CONFIG_RS}: found no v.req(\"...\") calls; has the config loader changed?")
m = re.search(r"const BATCH_CONCURRENCY: usize = (\d+);", ENTRY_RS.read_text())
if not m:
    problems.append(f"{ENTRY_RS}: no `const BATCH_CONCURRENCY: usize = N;`")
batch_concurrency = int(m[1]) if m else 1

for name in SECRETS:
    if not params.get(name, {}).get("NoEcho"):
        problems.append(f"parameter {name} must be NoEcho")

functions = {k: r for k, r in res.items() if r["Type"] == "AWS::Serverless::Function"}
if set(functions) != set(BINARIES):
    problems.append(f"expected functions {sorted(BINARIES)}, found {sorted(functions)}")
for name, fn in functions.items():
    props = fn["Properties"]
    get = lambda key: props.get(key, glob.get(key))
    if get("Runtime") != "provided.al2023" or get("Architectures") != ["arm64"] or get("Handler") != "bootstrap":
        problems.append(f"{name}: must be provided.al2023 on arm64 with Handler bootstrap")
    meta = fn.get("Metadata", {})
    if meta.get("BuildMethod") != "rust-cargolambda" or meta.get("BuildProperties", {}).get("Binary") != BINARIES.get(name):
        problems.append(f"{name}: must be built by rust-cargolambda as binary {BINARIES.get(name)}")
    if not (ROOT / "functions" / BINARIES.get(name, "?") / "Cargo.toml").exists():
        problems.append(f"{name}: no crate functions/{BINARIES.get(name)}")

    group = ref_name(props.get("LoggingConfig", {}).get("LogGroup"))
    if group not in res or res[group]["Type"] != "AWS::Logs::LogGroup" or "RetentionInDays" not in res[group]["Properties"]:
        problems.append(f"{name}: LoggingConfig.LogGroup must be a log group of the template with RetentionInDays")

    env = {**glob.get("Environment", {}).get("Variables", {}), **props.get("Environment", {}).get("Variables", {})}
    for var in sorted(set(env) - read_vars - OTHER_VARS):
        problems.append(f"{name}: sets {var}, which the code never reads")
    for var in sorted((required_vars | NEEDS.get(name, set())) - set(env)):
        problems.append(f"{name}: does not set {var}, which it needs")

    sends = set()
    for policy in props.get("Policies", []):
        if isinstance(policy, dict) and "SQSSendMessagePolicy" in policy:
            sends.add(ref_name(policy["SQSSendMessagePolicy"]["QueueName"]))
    if sends != SENDS_TO.get(name):
        problems.append(f"{name}: may send to {sorted(sends)}, expected {sorted(SENDS_TO.get(name, []))}")

    timeout = int(get("Timeout"))
    events = props.get("Events", {})
    for ev_name, ev in events.items():
        if ev["Type"] != "SQS":
            continue
        p = ev["Properties"]
        where = f"{name}.{ev_name}"
        if "ReportBatchItemFailures" not in p.get("FunctionResponseTypes", []):
            problems.append(f"{where}: FunctionResponseTypes lacks ReportBatchItemFailures")
        if int(p.get("BatchSize", 10)) > batch_concurrency:
            problems.append(f"{where}: BatchSize {p.get('BatchSize', 10)} > BATCH_CONCURRENCY {batch_concurrency}: "
                            "the last messages of a batch would start late and share one timeout")
        queue = res[ref_name(p["Queue"])]["Properties"]
        vt = int(queue.get("VisibilityTimeout", 30))
        if vt < 6 * timeout:
            problems.append(f"{where}: visibility timeout {vt}s < 6 x {timeout}s")
        rp = queue.get("RedrivePolicy")
        dlq = ref_name(rp.get("deadLetterTargetArn")) if rp else None
        if not rp or int(rp.get("maxReceiveCount", 0)) != 5 or dlq not in res:
            problems.append(f"{where}: queue needs a dead-letter queue after 5 receives")
        elif ref_name(env.get("DEAD_LETTER_QUEUE_URL")) != dlq:
            problems.append(f"{where}: DEAD_LETTER_QUEUE_URL must be !Ref {dlq}, the DLQ of the queue it reads")
        else:
            kept = int(queue.get("MessageRetentionPeriod", 345600))
            if int(res[dlq]["Properties"].get("MessageRetentionPeriod", 345600)) <= kept:
                problems.append(f"{where}: {dlq} must keep messages longer than its source queue")
    if name == "SegmentCronjobFunction":
        if not any(ev["Type"] in ("Schedule", "ScheduleV2") for ev in events.values()):
            problems.append(f"{name}: no schedule")
        if not any("MaximumConcurrency" in ev["Properties"].get("ScalingConfig", {})
                   for ev in events.values() if ev["Type"] == "SQS"):
            problems.append(f"{name}: the SQS event source needs ScalingConfig.MaximumConcurrency")

# Every dead-letter queue has an alarm on its visible messages.
dlqs = {
    ref_name(r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
    for r in res.values()
    if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r.get("Properties", {})
}
alarmed = {
    ref_name(d.get("Value"))
    for r in res.values()
    if r["Type"] == "AWS::CloudWatch::Alarm"
    and r["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    for d in r["Properties"].get("Dimensions", [])
    if d.get("Name") == "QueueName"
}
for q in sorted(dlqs - alarmed):
    problems.append(f"{q}: no alarm on messages in this dead-letter queue")

if problems:
    sys.exit("template.yaml:\n  " + "\n  ".join(problems))
print(f"template.yaml: {len(functions)} functions pass the structural rules "
      f"(env vars match config.rs, batches <= BATCH_CONCURRENCY {batch_concurrency})")
