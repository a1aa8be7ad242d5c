"""Every file of events/ is usable as-is by `sam local invoke -e` and
`cargo lambda invoke --data-file`, and says what docs/messages.md says.

SQS files (`*-sqs.json`) carry full records (messageId, receiptHandle, a body
that is a JSON *string*, attributes with SentTimestamp, md5OfBody of the body,
eventSource aws:sqs, the queue's ARN, awsRegion); other files are direct
invokes (create-segment, report-with-segment) or the EventBridge schedule
(segment-cronjob). Bodies are checked for the fields docs/messages.md marks
required; the files meant to fail say how many of their messages must.
The functions' own parsers check the same files in
shared/segments-handlers/tests/events.rs.
"""

import hashlib
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
DEMO_ACCOUNT = "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SAFE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
QUEUES = {
    "create-segment": "create-segment",
    "check-bigquery-job": "check-bigquery-job",
    "segment-cronjob": "cronjob",
    "report-with-segment": "report-with-segment",
    "segment-api": None,  # direct invokes and its Function URL; no queue
}
DIRECT = {"create-segment", "report-with-segment", "segment-api"}
# Files whose messages are meant to be refused at the message level, and how many.
MEANT_TO_FAIL = {
    "create-segment/batch-with-a-bad-message-sqs.json": 2,
    "check-bigquery-job/batch-with-a-bad-message-sqs.json": 1,
    "report-with-segment/too-many-segments.json": 1,
    "segment-api/bad-account.json": 1,
}
API_ACTIONS = {"get", "list", "enable", "disable", "test", "report-segments", "link-report", "unlink-report",
               "apply-chart", "preview", "options", "export"}
CHECK_ACTIONS = {"create-segment", "rebuild-segment", "refresh-segment", "query-report", "query-report-with-segment"}


def instant(s):
    return isinstance(s, str) and datetime.fromisoformat(s.replace("Z", "+00:00")).tzinfo is not None


def create_segment(m):
    action = m.get("action")
    assert UUID.match(m.get("accountId", "")), "accountId must be a UUID"
    if action in ("create", "update"):
        seg = m["segment"]
        assert UUID.match(seg.get("id", "")), "segment.id must be a UUID"
        assert isinstance(seg.get("name"), str) and 0 < len(seg["name"]) <= 200, "segment.name: 1 to 200 characters"
        assert isinstance(seg.get("ruleGroups"), list) and seg["ruleGroups"], "segment.ruleGroups: at least one"
        assert seg.get("accountId", m["accountId"]) == m["accountId"], "segment.accountId differs from accountId"
    elif action in ("rebuild", "delete"):
        assert UUID.match(m.get("segmentId", "")), "segmentId must be a UUID"
    elif action == "revert":
        assert UUID.match(m.get("segmentId", "")), "segmentId must be a UUID"
        assert isinstance(m.get("revision"), int) and m["revision"] >= 1, "revision must be 1, 2, ..."
    elif action == "expire-all":
        assert isinstance(m.get("dropTables", False), bool), "dropTables must be a boolean"
    else:
        raise AssertionError(f"unknown action {action!r}")


def check_job(m):
    for key in ("jobId", "accountId"):
        assert SAFE_ID.match(m.get(key, "")), f"{key} must be an id"
    assert m.get("action") in CHECK_ACTIONS, f"unknown action {m.get('action')!r}"
    assert instant(m.get("startedAt")), "startedAt must be an RFC 3339 instant"
    assert isinstance(m.get("attempt", 0), int) and m.get("attempt", 0) >= 0, "attempt must be a whole number"
    data = m.get("jobInputData", {})
    if m["action"] in ("create-segment", "rebuild-segment", "refresh-segment"):
        assert UUID.match(data.get("segmentId", "")), "jobInputData.segmentId is required for segment builds"
    else:
        assert data.get("cacheKey", "").startswith(f"{m['accountId']}_report_"), "jobInputData.cacheKey"
        assert SAFE_ID.match(data.get("resultTable", "")), "jobInputData.resultTable"
        assert isinstance(data.get("reportName"), str), "jobInputData.reportName"


def cronjob(m):
    assert UUID.match(m.get("accountId", "")), "accountId must be a UUID"
    ZoneInfo(m["timeZone"])
    if "scheduledAt" in m:
        assert instant(m["scheduledAt"]), "scheduledAt must be an RFC 3339 instant"


def report(m):
    assert UUID.match(m.get("accountId", "")), "accountId must be a UUID"
    if "accountTimeZone" in m:
        ZoneInfo(m["accountTimeZone"])
    for key in ("startDate", "endDate"):
        datetime.strptime(m["dateRange"][key], "%Y-%m-%d")
    assert m["dateRange"]["startDate"] <= m["dateRange"]["endDate"], "dateRange: start after end"
    assert isinstance(m.get("object"), str), "object is required"
    ids = []
    for key in ("segments", "comparisonSegments"):
        items = m.get(key, [])
        assert len(items) <= 4, f"{key}: at most 4"
        ids += [i if isinstance(i, str) else i["id"] for i in items]
    assert ids, "name at least one segment"
    assert all(UUID.match(i) for i in ids), "segment ids must be UUIDs"


def api(m):
    if "requestContext" in m:  # a Function URL request: the body is the request
        assert m["requestContext"].get("http", {}).get("method") == "POST", "Function URL requests are POSTs"
        m = json.loads(m["body"])
    action = m.get("action")
    assert action in API_ACTIONS, f"unknown action {action!r}"
    assert UUID.match(m.get("accountId", "")), "accountId must be a UUID"
    if action in ("get", "enable", "disable", "link-report", "unlink-report"):
        assert UUID.match(m.get("segmentId", "")), "segmentId must be a UUID"
    if action in ("report-segments", "link-report", "unlink-report", "apply-chart"):
        assert UUID.match(m.get("userId", "")), "userId must be a UUID"
        assert isinstance(m.get("reportName"), str) and 0 < len(m["reportName"]) <= 200, "reportName: 1 to 200 characters"
    if action == "apply-chart":
        assert len(m["segmentIds"]) <= 4 and all(UUID.match(i) for i in m["segmentIds"]), "segmentIds: at most 4 UUIDs"
    if action == "test":
        assert isinstance(m["segment"].get("ruleGroups"), list), "segment.ruleGroups is required"
    if action == "preview":
        assert isinstance(m.get("group"), dict), "group is required"
    if action == "options":
        assert isinstance(m.get("optionType"), str), "optionType is required"
    if action == "export":
        assert m["metrics"] and m["segmentTables"], "metrics and segmentTables are required"
        for t in m["segmentTables"]:
            assert UUID.match(t["segmentId"]) and t["table"].startswith("report_"), "segmentTables: {segmentId, table}"


BODY = {
    "create-segment": create_segment,
    "check-bigquery-job": check_job,
    "segment-cronjob": cronjob,
    "report-with-segment": report,
    "segment-api": api,
}


def failures(fn, bodies):
    n = 0
    for text in bodies:
        try:
            m = json.loads(text) if isinstance(text, str) else text
            assert isinstance(m, dict), "a message is a JSON object"
            BODY[fn](m)
        except (AssertionError, ValueError, KeyError, TypeError, LookupError):
            n += 1
    return n


problems = []
readme = (EVENTS / "README.md").read_text()
files = sorted(p for p in EVENTS.glob("*/*") if p.is_file())
for path in files:
    rel = path.relative_to(EVENTS).as_posix()
    fn = path.parent.name

    def bad(msg):
        problems.append(f"events/{rel}: {msg}")

    if fn not in QUEUES:
        bad("not a function's folder")
        continue
    if f"`{rel}`" not in readme:
        bad("not described in events/README.md")
    try:
        event = json.loads(path.read_text())
    except ValueError as e:
        bad(f"not JSON: {e}")
        continue
    if DEMO_ACCOUNT not in path.read_text() and "schedule" not in rel:
        bad(f"does not name the demo account {DEMO_ACCOUNT}")
    if rel.endswith("-sqs.json"):
        records = event.get("Records")
        if not isinstance(records, list) or not records:
            bad("no Records")
            continue
        if len({r.get("messageId") for r in records}) != len(records):
            bad("messageIds repeat")
        for i, r in enumerate(records):
            where = f"Records[{i}]"
            if not UUID.match(str(r.get("messageId"))):
                bad(f"{where}.messageId is not a UUID")
            if not r.get("receiptHandle"):
                bad(f"{where}.receiptHandle is missing")
            if not isinstance(r.get("body"), str):
                bad(f"{where}.body must be a JSON string, not an object")
                continue
            if r.get("md5OfBody") and r["md5OfBody"] != hashlib.md5(r["body"].encode()).hexdigest():
                bad(f"{where}.md5OfBody is not the body's MD5")
            attrs = r.get("attributes", {})
            if not str(attrs.get("SentTimestamp", "")).isdigit() or "ApproximateReceiveCount" not in attrs:
                bad(f"{where}.attributes needs SentTimestamp (ms) and ApproximateReceiveCount")
            if r.get("eventSource") != "aws:sqs":
                bad(f"{where}.eventSource must be aws:sqs")
            arn = str(r.get("eventSourceARN", ""))
            if not re.match(rf"^arn:aws:sqs:[a-z0-9-]+:\d{{12}}:[A-Za-z0-9-]+-{QUEUES[fn]}$", arn):
                bad(f"{where}.eventSourceARN must name the {QUEUES[fn]} queue")
            if arn.split(":")[3:4] != [r.get("awsRegion")]:
                bad(f"{where}.awsRegion differs from the queue's region")
        got = failures(fn, [r["body"] for r in records if isinstance(r.get("body"), str)])
    elif fn == "segment-cronjob":
        if event.get("detail-type") != "Scheduled Event" or event.get("source") != "aws.events":
            bad("a direct segment-cronjob event must be the EventBridge schedule")
        elif not instant(event.get("time")):
            bad("time must be an RFC 3339 instant")
        continue
    elif fn in DIRECT:
        if "Records" in event:
            bad("an SQS event must be named *-sqs.json")
        got = failures(fn, [event])
    else:
        bad(f"{fn} takes SQS events only: name the file *-sqs.json")
        continue
    want = MEANT_TO_FAIL.get(rel, 0)
    if got != want:
        bad(f"{got} message(s) fail the docs/messages.md rules, expected {want}")

for rel in MEANT_TO_FAIL:
    if not (EVENTS / rel).exists():
        problems.append(f"events/{rel}: missing")
if problems:
    sys.exit("events/:\n  " + "\n  ".join(problems))
print(f"events/: {len(files)} files are well-formed sample events")
