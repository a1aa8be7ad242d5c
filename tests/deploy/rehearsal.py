"""The deploy rehearsal (tests/deploy/rehearsal.sh runs it).

1. The template as SAM's translator produces it (CodeUri replaced by the S3
   locations `sam package` would upload to), checked by rules on the
   translated resources: what CloudFormation will really create.
2. That template created as a stack on moto's CloudFormation, with the
   resource types moto implements (the others are listed, not faked).
3. The four function binaries (host builds, behind cargo lambda's runtime API)
   run against the queues and the bucket of that stack, on a Postgres database
   created empty for the run and the fixture warehouse on the BigQuery
   emulator: cold start, create, check, expire-all fan-out, schedule fan-out,
   an account's refresh, a report.
Prints a summary; exits non-zero on any failed step. With --translate-only,
step 1 alone (offline, a few seconds: tests/deploy/check.sh runs it).
"""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
STACK_DIR = ROOT / ".stack" / "rehearsal"
STACK_DIR.mkdir(parents=True, exist_ok=True)
ENV_FILE = ROOT / ".stack/env"
ENV = dict(l.split("=", 1) for l in ENV_FILE.read_text().splitlines() if "=" in l) if ENV_FILE.exists() else {}
# --translate-only: steps 1 and its rules (tests/deploy/check.sh runs that part).
TRANSLATE_ONLY = "--translate-only" in sys.argv
SAM_PY = ROOT / ".venv-sam/bin/python"
RUN = uuid.uuid4().hex[:8]
STACK = f"rehearsal-{RUN}"
ARTIFACTS = f"rehearsal-artifacts-{RUN}"
STATIC = f"rehearsal-static-{RUN}"
# What moto's CloudFormation implements (the rest is reported as not rehearsed).
MOTO_TYPES = {
    "AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Logs::LogGroup", "AWS::CloudWatch::Alarm",
    "AWS::IAM::Role", "AWS::Lambda::Function", "AWS::Lambda::Version", "AWS::Lambda::EventSourceMapping",
    "AWS::Events::Rule", "AWS::Lambda::Permission",
}
summary = []
failed = False


def step(name, ok, detail=""):
    global failed
    failed |= not ok
    summary.append(f"  [{'ok' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}")
    print(summary[-1], flush=True)


def aws(service):
    return boto3.client(service, endpoint_url=ENV["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


# ---- 1. translate ---------------------------------------------------------------
template, errors = decode(str(ROOT / "template.yaml"))
if errors:
    sys.exit(f"template.yaml does not decode: {errors}")
for k, r in template["Resources"].items():
    if r["Type"] == "AWS::Serverless::Function":
        r["Properties"]["CodeUri"] = f"s3://{ARTIFACTS}/{k}.zip"
(STACK_DIR / "packaged.json").write_text(json.dumps(template, default=str))
translate = subprocess.run(
    [str(SAM_PY), "-c", """
import json, sys
from samtranslator.translator.transform import transform
class Loader:
    def load(self): return {}
t = json.load(open(sys.argv[1]))
json.dump(transform(t, {"AWS::Region": "us-east-1"}, Loader()), open(sys.argv[2], "w"), indent=1, default=str)
""", str(STACK_DIR / "packaged.json"), str(STACK_DIR / "translated.json")],
    capture_output=True, text=True, env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"})
step("SAM translator", translate.returncode == 0, translate.stderr.strip().splitlines()[-1] if translate.returncode else "")
if translate.returncode:
    sys.exit(1)
cfn = json.loads((STACK_DIR / "translated.json").read_text())
res = cfn["Resources"]
by_type = {}
for k, r in res.items():
    by_type.setdefault(r["Type"], []).append(k)
step("translated resources", True, ", ".join(f"{len(v)} {t.split('::', 1)[1]}" for t, v in sorted(by_type.items())))

# ---- rules on the translated template -------------------------------------------
functions = by_type.get("AWS::Lambda::Function", [])
aliases = {k: r for k, r in res.items() if r["Type"] == "AWS::Lambda::Alias"}
groups = {k: r for k, r in res.items() if r["Type"] == "AWS::CodeDeploy::DeploymentGroup"}
esms = {k: r for k, r in res.items() if r["Type"] == "AWS::Lambda::EventSourceMapping"}
problems = []
for fn in functions:
    if not any(a["Properties"]["FunctionName"] == {"Ref": fn} and a["Properties"]["Name"] == "live" for a in aliases.values()):
        problems.append(f"{fn}: no live alias")
for k, e in esms.items():
    if "MaximumConcurrency" not in e["Properties"].get("ScalingConfig", {}):
        problems.append(f"{k}: no MaximumConcurrency")
    if "Alias" not in json.dumps(e["Properties"]["FunctionName"]):
        problems.append(f"{k}: invokes $LATEST, not the live alias")
for k, g in groups.items():
    alarms = g["Properties"].get("AlarmConfiguration", {}).get("Alarms", [])
    if len(alarms) != 4 or not g["Properties"].get("AutoRollbackConfiguration", {}).get("Enabled"):
        problems.append(f"{k}: deployment group without the four error alarms and auto-rollback")
if len(groups) != len(functions):
    problems.append(f"{len(groups)} deployment groups for {len(functions)} functions")
roles = [r for r in res.values() if r["Type"] == "AWS::IAM::Role"]
kms_roles = sum("kms:Decrypt" in json.dumps(r) for r in roles)
if kms_roles < len(functions):
    problems.append(f"kms:Decrypt in {kms_roles} roles of {len(functions)} functions")
for fn in functions:
    p = res[fn]["Properties"]
    if "CertificateLayerArn" not in json.dumps(p.get("Layers")):
        problems.append(f"{fn}: no CertificateLayerArn layer")
    if p.get("MemorySize", 128) < 256:
        problems.append(f"{fn}: {p.get('MemorySize')} MB")
dlqs = [k for k, r in res.items() if r["Type"] == "AWS::SQS::Queue" and k.endswith("DeadLetterQueue")]
if any(res[k].get("DeletionPolicy") != "Retain" for k in dlqs):
    problems.append("a dead-letter queue is not retained")
invoke_configs = [r for r in res.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
if not any("OnFailure" in json.dumps(r) for r in invoke_configs):
    problems.append("no on-failure destination for the schedule")
step("rules on the translated template", not problems,
     "; ".join(problems) if problems else
     f"{len(esms)} event sources with MaximumConcurrency on the live alias, {len(groups)} deployment groups "
     f"with 4 error alarms and auto-rollback, kms:Decrypt in {kms_roles} roles, CA layer on {len(functions)} functions, "
     f"{len(dlqs)} retained DLQs, schedule on-failure destination")

if TRANSLATE_ONLY:
    sys.exit(1 if failed else 0)

# ---- 2. create on moto ----------------------------------------------------------
s3, sqs, cf = aws("s3"), aws("sqs"), aws("cloudformation")
for bucket in (ARTIFACTS, STATIC):
    s3.create_bucket(Bucket=bucket)
# The "packaged" code: the host-built binaries, zipped as bootstrap.
binaries = {"CreateSegmentFunction": "create-segment", "CheckBigQueryJobFunction": "check-bigquery-job",
            "SegmentCronjobFunction": "segment-cronjob", "ReportWithSegmentFunction": "report-with-segment"}
import io
import zipfile
for logical, binary in binaries.items():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write(ROOT / "target/debug" / binary, "bootstrap")
    s3.put_object(Bucket=ARTIFACTS, Key=f"{logical}.zip", Body=buf.getvalue())


def refs(v):
    out = set()
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "Ref" and isinstance(x, str):
                out.add(x)
            elif k == "Fn::GetAtt":
                out.add(x[0] if isinstance(x, list) else x.split(".")[0])
            elif k == "Fn::Sub":
                s = x[0] if isinstance(x, list) else x
                import re
                out |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", s)}
                out |= refs(x[1] if isinstance(x, list) else {})
            else:
                out |= refs(x)
    elif isinstance(v, list):
        for x in v:
            out |= refs(x)
    return out


kept = {k: r for k, r in res.items() if r["Type"] in MOTO_TYPES}
while True:  # drop what depends on a dropped resource
    gone = [k for k, r in kept.items()
            if any(d in res and d not in kept for d in refs(r) | set(r.get("DependsOn", []) if isinstance(r.get("DependsOn"), list) else [r.get("DependsOn")] if r.get("DependsOn") else []))]
    if not gone:
        break
    for k in gone:
        del kept[k]
for k, r in kept.items():
    r.pop("UpdateReplacePolicy", None)
skipped = sorted({r["Type"] for k, r in res.items() if k not in kept})
moto_cfn = {**cfn, "Resources": kept}
moto_cfn["Outputs"] = {k: o for k, o in cfn.get("Outputs", {}).items() if refs(o["Value"]) <= set(kept)}
params = {
    "CronjobSchedule": "cron(0 * * * ? *)",
    "BigQueryProject": ENV["BIGQUERY_PROJECT"], "StaticBucketName": STATIC,
    "DatabaseUrl": "postgres://unused", "RedisUrl": ENV["REDIS_URL"], "GoogleServiceAccountKey": "{}",
    "PusherSecret": ENV["PUSHER_SECRET"], "PusherAppId": ENV["PUSHER_APP_ID"], "PusherKey": ENV["PUSHER_KEY"],
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:rehearsal-alarms",
    "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
}
# moto leaves AWS::NoValue in lists (an IAM role's Policies): resolve every
# Fn::If here with the conditions these parameters give, as CloudFormation does.
defaults = {k: str(p.get("Default", "")) for k, p in cfn.get("Parameters", {}).items()}
values = {**defaults, **params}


def ev(x):
    if isinstance(x, dict):
        (op, a), = x.items()
        if op == "Ref":
            return values.get(a, a)
        if op == "Fn::Equals":
            return str(ev(a[0])) == str(ev(a[1]))
        if op == "Fn::Not":
            return not ev(a[0])
        if op == "Fn::And":
            return all(ev(v) for v in a)
        if op == "Fn::Or":
            return any(ev(v) for v in a)
        if op == "Condition":
            return ev(cfn["Conditions"][a])
        if op == "Fn::Join":
            return a[0].join(str(v) for v in (ev(a[1]) if isinstance(a[1], dict) else [ev(v) for v in a[1]]))
    return x


conditions = {k: ev(c) for k, c in cfn.get("Conditions", {}).items()}
NOVALUE = object()


def resolve(x):
    if isinstance(x, dict):
        if list(x) == ["Fn::If"]:
            cond, yes, no = x["Fn::If"]
            return resolve(yes if conditions[cond] else no)
        if x == {"Ref": "AWS::NoValue"}:
            return NOVALUE
        return {k: v for k, v in ((k, resolve(v)) for k, v in x.items()) if v is not NOVALUE}
    if isinstance(x, list):
        return [v for v in map(resolve, x) if v is not NOVALUE]
    return x


moto_cfn["Resources"] = {k: r for k, r in resolve(moto_cfn["Resources"]).items()
                         if "Condition" not in r or conditions[r["Condition"]]}
cf.create_stack(StackName=STACK, TemplateBody=json.dumps(moto_cfn, default=str),
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
                Capabilities=["CAPABILITY_IAM"])
for _ in range(120):
    st = cf.describe_stacks(StackName=STACK)["Stacks"][0]
    if not st["StackStatus"].endswith("IN_PROGRESS"):
        break
    time.sleep(0.5)
status = st["StackStatus"]
created = cf.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
UNTYPED = "with no type in moto's answer (the alarms and the queue policy)"
counts = {}
for r in created:
    counts[r["ResourceType"]] = counts.get(r["ResourceType"], 0) + 1
step(f"stack {STACK} on moto CloudFormation", status == "CREATE_COMPLETE",
     f"{status}; {len(created)} resources ({', '.join(f'{n} {t or UNTYPED}' for t, n in sorted(counts.items()))})")
summary.append(f"         not implemented by moto, not rehearsed: {', '.join(skipped)}")
print(summary[-1])
if status != "CREATE_COMPLETE":
    print(json.dumps(cf.describe_stack_events(StackName=STACK)["StackEvents"][:5], default=str, indent=1))
    sys.exit(1)
physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in created}
url = lambda logical: sqs.get_queue_url(QueueName=physical[logical].rsplit("/", 1)[-1])["QueueUrl"]
queues = {k: url(k) for k in ("CreateSegmentQueue", "CheckJobQueue", "CronjobQueue", "ReportQueue")}
redrive = json.loads(sqs.get_queue_attributes(QueueUrl=queues["CheckJobQueue"], AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
step("queues of the stack", redrive["maxReceiveCount"] == 5, f"{', '.join(q.rsplit('/', 1)[-1] for q in queues.values())}; check-bigquery-job redrives to {redrive['deadLetterTargetArn'].rsplit(':', 1)[-1]}")

# ---- 3. the functions against that stack ----------------------------------------
db = f"rehearsal_{RUN}"
base_db = ENV["DATABASE_URL"]
psql = lambda sql, url=base_db: subprocess.run(["psql", "-w", "-q", "-t", "-A", url, "-c", sql], capture_output=True, text=True, check=True).stdout.strip()
psql(f"CREATE DATABASE {db}")
db_url = base_db.rsplit("/", 1)[0] + "/" + db
# The web app's tables exist before our first deploy (its own migrations); ours do not.
subprocess.run(["psql", "-w", "-q", db_url, "-f", str(ROOT / "shared/segments-infra/src/migrations/001_web_app_tables.sql")],
               check=True, capture_output=True)
account = str(uuid.uuid4())
psql(f"INSERT INTO \"Accounts\" (id, \"timeZone\", name) VALUES ('{account}', 'UTC', 'Rehearsal')", db_url)
s3.put_object(Bucket=STATIC, Key=f"server-side-trigger/{account}.json", Body=b"[]")
# The account's analytics tables on the BigQuery emulator (tests/fixtures/warehouse.sql),
# as the web app's pipeline keeps them in production.
import urllib.request


def bq(path, body):
    req = urllib.request.Request(f"{ENV['BIGQUERY_BASE_URL']}/bigquery/v2/projects/{ENV['BIGQUERY_PROJECT']}/{path}",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}")


dataset = f"rehearsal_{RUN}_{account.replace('-', '_')}"
bq("datasets", {"datasetReference": {"projectId": ENV["BIGQUERY_PROJECT"], "datasetId": dataset}})
for stmt in (ROOT / "tests/fixtures/warehouse.sql").read_text().split("\n;\n"):
    body = "\n".join(l for l in stmt.splitlines() if not l.lstrip().startswith("--"))
    if body.strip():
        bq("queries", {"query": body.replace("{{dataset}}", f"`{ENV['BIGQUERY_PROJECT']}`.`{dataset}`"),
                       "useLegacySql": False, "timeoutMs": 60000})

fn_env = {**os.environ, **ENV, "DATABASE_URL": db_url, "CHECK_JOB_QUEUE_URL": queues["CheckJobQueue"],
          "CRONJOB_QUEUE_URL": queues["CronjobQueue"], "CREATE_SEGMENT_QUEUE_URL": queues["CreateSegmentQueue"],
          "STATIC_BUCKET": STATIC, "BIGQUERY_DATASET_PREFIX": f"rehearsal_{RUN}_", "RUST_LOG": "debug",
          "DATABASE_POOL_SIZE": "4", "DATABASE_STATEMENT_TIMEOUT_MS": "20000"}
cargo_lambda = str(ROOT / ".venv/bin/cargo-lambda")
port = 9300 + int(RUN[:4], 16) % 500
procs = [subprocess.Popen([cargo_lambda, "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
time.sleep(2)
logs = {}
for binary in binaries.values():
    logs[binary] = open(STACK_DIR / f"{binary}.log", "w")
    procs.append(subprocess.Popen([str(ROOT / "target/debug" / binary)], stdout=logs[binary], stderr=subprocess.STDOUT,
                                  env={**fn_env, "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{port}/.rt/{binary}",
                                       "AWS_LAMBDA_FUNCTION_NAME": binary, "AWS_LAMBDA_FUNCTION_VERSION": "1",
                                       "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"}))


def invoke(binary, payload):
    out = subprocess.run([cargo_lambda, "lambda", "invoke", binary, "--invoke-address", "127.0.0.1",
                          "--invoke-port", str(port), "--data-ascii", json.dumps(payload)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stdout + out.stderr)
    return json.loads(out.stdout)


def receive(queue, n=1, wait=20):
    """Up to n messages as the event source mapping delivers them: an SQS event."""
    records, deadline = [], time.time() + wait
    while len(records) < n and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=min(10, n - len(records)), WaitTimeSeconds=1,
                                     AttributeNames=["All"]).get("Messages", []):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            records.append({"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "eventSource": "aws:sqs",
                            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
    return {"Records": records}


try:
    segment = str(uuid.uuid4())
    create = {"action": "create", "accountId": account, "segment": {"id": segment, "name": "Rehearsal US sessions", "ruleGroups": [
        {"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
         "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "us"}}]}}
    sqs.send_message(QueueUrl=queues["CreateSegmentQueue"], MessageBody=json.dumps(create))
    out = invoke("create-segment", receive(queues["CreateSegmentQueue"]))
    tables = psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM segments_migrations", db_url)
    step("cold start on an empty database", tables == "2,3", f"segments_migrations {tables} (segment_jobs created by the first invocation)")
    step("create-segment from the stack's queue", out.get("batchItemFailures") == [], json.dumps(out))
    check = receive(queues["CheckJobQueue"], wait=30)
    step("check message on the stack's CheckJobQueue", len(check["Records"]) == 1)
    status = "in-progress"
    for _ in range(6):
        if not check["Records"]:
            break
        out = invoke("check-bigquery-job", check)
        status = psql(f"SELECT status FROM segment_jobs WHERE segment_id = '{segment}' ORDER BY started_seq DESC LIMIT 1", db_url)
        if status != "in-progress":
            break
        check = receive(queues["CheckJobQueue"], wait=30)
    error = psql(f"SELECT coalesce(error, '') FROM segment_jobs WHERE segment_id = '{segment}' ORDER BY started_seq DESC LIMIT 1", db_url)
    step("check-bigquery-job recorded the job's end", status == "done",
         f"{status}{' (' + error[:90] + ')' if error else ''}")
    sqs.send_message(QueueUrl=queues["CreateSegmentQueue"], MessageBody=json.dumps({"action": "expire-all", "accountId": account, "dropTables": True}))
    out = invoke("create-segment", receive(queues["CreateSegmentQueue"]))
    fanned = receive(queues["CreateSegmentQueue"])
    bodies = [json.loads(r["body"]) for r in fanned["Records"]]
    step("expire-all fans out on the stack's CreateSegmentQueue", len(bodies) == 1 and bodies[0]["action"] == "rebuild" and bodies[0]["dropTable"] is True,
         json.dumps(bodies))
    out = invoke("create-segment", fanned)
    step("the fanned-out rebuild", out.get("batchItemFailures") == [], json.dumps(out))
    # The rebuild's check, so the segment is built (what the schedule refreshes).
    recheck = receive(queues["CheckJobQueue"], wait=30)
    for _ in range(6):
        if not recheck["Records"]:
            break
        invoke("check-bigquery-job", recheck)
        if psql(f"SELECT \"queryStatus\" FROM \"Segments\" WHERE id = '{segment}'", db_url) != "in-progress":
            break
        recheck = receive(queues["CheckJobQueue"], wait=30)
    built = psql(f"SELECT \"queryStatus\" FROM \"Segments\" WHERE id = '{segment}'", db_url)
    step("the rebuild's check", built == "done", built)
    out = invoke("segment-cronjob", {"version": "0", "id": "e", "detail-type": "Scheduled Event", "source": "aws.events",
                                     "time": time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime()), "region": "us-east-1",
                                     "resources": [], "detail": {}})
    step("schedule fan-out to the stack's CronjobQueue", out.get("accounts", 0) >= 1, json.dumps(out))
    mine = None
    for _ in range(20):
        batch = receive(queues["CronjobQueue"], n=10, wait=3)
        mine = next((r for r in batch["Records"] if json.loads(r["body"])["accountId"] == account), None)
        if mine or not batch["Records"]:
            break
    out = invoke("segment-cronjob", {"Records": [mine]} if mine else {"Records": []})
    step("the account's refresh (trigger file read from the static bucket)", mine is not None and out.get("batchItemFailures") == [], json.dumps(out))
    report = {"accountId": account, "accountTimeZone": "UTC", "reportName": "sessions-by-device", "object": "session",
              "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"}, "dimensions": ["device_type"],
              "metrics": ["sessions"], "segments": [segment], "comparisonSegments": [], "limit": 10, "offset": 0}
    receive(queues["CheckJobQueue"], n=10, wait=3)  # the refresh's checks
    sqs.send_message(QueueUrl=queues["ReportQueue"], MessageBody=json.dumps(report))
    out = invoke("report-with-segment", receive(queues["ReportQueue"]))
    checks = [json.loads(r["body"])["action"] for r in receive(queues["CheckJobQueue"], n=10, wait=10)["Records"]]
    step("report-with-segment from the stack's ReportQueue",
         out.get("batchItemFailures") == [] and checks and all(a.startswith("query-report") for a in checks),
         f"{json.dumps(out)}; checks queued: {checks}")
    leaked = [b for b in binaries.values() if "BEGIN PRIVATE KEY" in (STACK_DIR / f"{b}.log").read_text()]
    lines = sum(len((STACK_DIR / f"{b}.log").read_text().splitlines()) for b in binaries.values())
    step("function logs at RUST_LOG=debug", not leaked, f"{lines} lines in .stack/rehearsal/*.log")
except Exception as e:  # the summary says which step broke
    step("functions", False, str(e)[:300])
finally:
    for p in procs:
        p.kill()
    cf.delete_stack(StackName=STACK)
    for bucket in (ARTIFACTS, STATIC):
        for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=o["Key"])
        s3.delete_bucket(Bucket=bucket)
    psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

print("\nrehearsal summary:\n" + "\n".join(summary))
sys.exit(1 if failed else 0)
