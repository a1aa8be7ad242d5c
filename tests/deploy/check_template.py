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
And what a first production deploy needs (issue 16): a connection budget
(MaximumConcurrency on every SQS event source, pool size and statement timeout
set), a live alias moved by a deployment preference that the functions' error
alarms roll back, dead-letter queues retained on delete, an on-failure
destination for the schedule, a KMS key parameter granting kms:Decrypt, a CA
certificate layer parameter, Pusher ids that may come from the secret, an
unconditional s3:ListBucket (a missing trigger file is then 404), 256 MB at least.
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
    "CreateSegmentFunction": {"CheckJobQueue", "CreateSegmentQueue", "CreateSegmentDeadLetterQueue"},
    "CheckBigQueryJobFunction": {"CheckJobQueue", "CheckJobDeadLetterQueue"},
    "SegmentCronjobFunction": {"CronjobQueue", "CronjobDeadLetterQueue"},
    "ReportWithSegmentFunction": {"CheckJobQueue", "ReportDeadLetterQueue"},
}
# Every function dead-letters a permanent failure itself (DEAD_LETTER_QUEUE_URL,
# checked below to be the DLQ of the queue it reads).
NEEDS = {
    "CreateSegmentFunction": {"CREATE_SEGMENT_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"},
    "CheckBigQueryJobFunction": {"DEAD_LETTER_QUEUE_URL"},
    "SegmentCronjobFunction": {"CRONJOB_QUEUE_URL", "STATIC_BUCKET", "DEAD_LETTER_QUEUE_URL"},
    "ReportWithSegmentFunction": {"DEAD_LETTER_QUEUE_URL"},
}
# Every function's connection budget and TLS settings come from the template.
EVERY_FUNCTION_SETS = {"DATABASE_POOL_SIZE", "DATABASE_STATEMENT_TIMEOUT_MS", "REDIS_CA_FILE"}
# Our Postgres connections at the template's defaults must fit this budget
# (docs/deploy.md, connection budget: a small RDS instance with room for the web app).
CONNECTION_BUDGET = 100
SECRETS = {"DatabaseUrl", "RedisUrl", "GoogleServiceAccountKey", "PusherSecret"}
# Required only with WAREHOUSE=postgres (docs/postgres-warehouse.md); the
# template deploys the BigQuery warehouse.
ONLY_FOR_POSTGRES_WAREHOUSE = {"WAREHOUSE_URL"}
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


def iff(v):
    """The value-if-true of a !If (what applies when the parameter is set)."""
    if isinstance(v, dict) and "Fn::If" in v:
        return v["Fn::If"][1]
    return v


def as_list(v):
    return v if isinstance(v, list) else [v]


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
    # Required only by the warehouse they configure (config.rs reads them in its branch).
    if str(env.get("WAREHOUSE", "bigquery")).lower() == "postgres":
        needed = required_vars
    else:
        needed = required_vars - ONLY_FOR_POSTGRES_WAREHOUSE
    for var in sorted((needed | NEEDS.get(name, set()) | EVERY_FUNCTION_SETS) - set(env)):
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
        if "MaximumConcurrency" not in p.get("ScalingConfig", {}):
            problems.append(f"{where}: needs ScalingConfig.MaximumConcurrency (the connection budget)")
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
    if int(get("MemorySize") or 128) < 256:
        problems.append(f"{name}: MemorySize {get('MemorySize')} < 256")
    statements = [
        st
        for policy in props.get("Policies", [])
        for st in iff(policy).get("Statement", []) if isinstance(policy, dict)
    ]
    statements = [iff(st) for st in statements]
    if not any(
        "kms:Decrypt" in as_list(st.get("Action")) and ref_name(st.get("Resource")) == "KmsKeyArn"
        for st in statements
    ):
        problems.append(f"{name}: no kms:Decrypt on KmsKeyArn")
    if name == "SegmentCronjobFunction":
        for st in statements:
            if "s3:ListBucket" in as_list(st.get("Action")) and "Condition" in st:
                problems.append(f"{name}: s3:ListBucket has a Condition; GetObject of a missing key then reads as 403")
        destination = props.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure", {})
        if ref_name(destination.get("Destination")) not in res:
            problems.append(f"{name}: the schedule's invocations need an on-failure destination")
        for ev in events.values():
            if ev["Type"] == "Schedule" and ref_name(ev["Properties"].get("DeadLetterConfig", {}).get("Arn")) not in res:
                problems.append(f"{name}: the schedule needs a DeadLetterConfig")
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
for q in sorted(dlqs):
    if res[q].get("DeletionPolicy") != "Retain" or res[q].get("UpdateReplacePolicy") != "Retain":
        problems.append(f"{q}: a dead-letter queue must be retained (DeletionPolicy and UpdateReplacePolicy Retain): sam delete would discard its messages")

# Alerting and rollback: an error alarm per function, all rolling back the live alias.
error_alarms = {}
for k, r in res.items():
    p = r.get("Properties", {})
    if r["Type"] == "AWS::CloudWatch::Alarm" and p.get("Namespace") == "AWS/Lambda" and p.get("MetricName") == "Errors":
        for d in p.get("Dimensions", []):
            if d.get("Name") == "FunctionName":
                error_alarms[k] = str(d.get("Value"))
for name, binary in BINARIES.items():
    fname = str(functions.get(name, {}).get("Properties", {}).get("FunctionName"))
    if not any(v == fname for v in error_alarms.values()):
        problems.append(f"{name}: no AWS/Lambda Errors alarm on {fname}")
for k, r in res.items():
    if r["Type"] == "AWS::CloudWatch::Alarm":
        actions = r["Properties"].get("AlarmActions")
        if "AlarmTopicArn" not in str(actions):
            problems.append(f"{k}: AlarmActions must notify AlarmTopicArn")
if glob.get("AutoPublishAlias") != "live":
    problems.append("Globals.Function: AutoPublishAlias live is missing (functions would run $LATEST)")
pref = glob.get("DeploymentPreference", {})
if ref_name(pref.get("Type")) != "DeploymentType" or set(map(ref_name, pref.get("Alarms", []))) != set(error_alarms):
    problems.append("Globals.Function: DeploymentPreference needs Type !Ref DeploymentType and every function error alarm")
if "CertificateLayerArn" not in str(glob.get("Layers")):
    problems.append("Globals.Function: Layers must take CertificateLayerArn (the RDS CA bundle)")
if "FunctionReservedConcurrency" not in str(glob.get("ReservedConcurrentExecutions")):
    problems.append("Globals.Function: ReservedConcurrentExecutions must come from FunctionReservedConcurrency")
for pname in ("KmsKeyArn", "CertificateLayerArn", "AlarmTopicArn", "QueueMaximumConcurrency", "DatabasePoolSize"):
    if pname not in params:
        problems.append(f"parameter {pname} is missing")
for pname in ("PusherAppId", "PusherKey"):
    if params.get(pname, {}).get("Default") != "":
        problems.append(f"parameter {pname} needs Default \"\" (it may come from the SecretsArn secret)")

# The connection budget at the defaults: every SQS event source at its
# MaximumConcurrency, plus one schedule fan-out, times the pool size.
def default(v):
    name = ref_name(v)
    return int(params[name]["Default"]) if name in params else int(v)

pool = default(glob.get("Environment", {}).get("Variables", {}).get("DATABASE_POOL_SIZE", 4))
environments = 1 + sum(
    default(ev["Properties"]["ScalingConfig"]["MaximumConcurrency"])
    for fn in functions.values()
    for ev in fn["Properties"].get("Events", {}).values()
    if ev["Type"] == "SQS" and "MaximumConcurrency" in ev["Properties"].get("ScalingConfig", {})
)
connections = environments * pool
if connections > CONNECTION_BUDGET:
    problems.append(f"connection budget: {environments} environments x {pool} = {connections} > {CONNECTION_BUDGET}")

if problems:
    sys.exit("template.yaml:\n  " + "\n  ".join(problems))
print(f"template.yaml: {len(functions)} functions pass the structural rules "
      f"(env vars match config.rs, batches <= BATCH_CONCURRENCY {batch_concurrency}, "
      f"at most {connections} Postgres connections at the defaults: {environments} environments x pool {pool})")
