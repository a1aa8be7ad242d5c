"""Structural rules for template.yaml that neither cfn-lint nor sam validate enforce.

Every SQS-triggered function reports partial batch failures; every queue has a
dead-letter queue and a visibility timeout of at least 6x the timeout of the
function reading it; every function is provided.al2023 on arm64 built with
cargo-lambda; every function has a log group with retention.
Run with the project venv's python (it has cfn-lint's template decoder).
"""

import sys

from cfnlint.decode import decode

template, errors = decode(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
if errors:
    sys.exit(f"template does not decode: {errors}")
res = template["Resources"]
glob = template.get("Globals", {}).get("Function", {})
problems = []


def ref_name(v):
    """The logical id behind !GetAtt X.Arn / !Ref X."""
    if isinstance(v, dict):
        if "Fn::GetAtt" in v:
            g = v["Fn::GetAtt"]
            return g[0] if isinstance(g, list) else g.split(".")[0]
        if "Ref" in v:
            return v["Ref"]
    return None


functions = {k: r for k, r in res.items() if r["Type"] == "AWS::Serverless::Function"}
if len(functions) != 4:
    problems.append(f"expected 4 functions, found {sorted(functions)}")
log_groups = [r["Properties"]["LogGroupName"] for r in res.values() if r["Type"] == "AWS::Logs::LogGroup"]
for name, fn in functions.items():
    props = fn["Properties"]
    get = lambda key: props.get(key, glob.get(key))
    if get("Runtime") != "provided.al2023" or get("Architectures") != ["arm64"]:
        problems.append(f"{name}: must be provided.al2023 on arm64")
    if fn.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
        problems.append(f"{name}: BuildMethod must be rust-cargolambda")
    if not any(name in str(g) for g in log_groups):
        problems.append(f"{name}: no log group with retention")
    timeout = int(get("Timeout"))
    for ev_name, ev in props.get("Events", {}).items():
        if ev["Type"] != "SQS":
            continue
        p = ev["Properties"]
        if "ReportBatchItemFailures" not in p.get("FunctionResponseTypes", []):
            problems.append(f"{name}.{ev_name}: FunctionResponseTypes lacks ReportBatchItemFailures")
        queue = res[ref_name(p["Queue"])]["Properties"]
        vt = int(queue.get("VisibilityTimeout", 30))
        if vt < 6 * timeout:
            problems.append(f"{name}.{ev_name}: visibility timeout {vt}s < 6 x {timeout}s")
        rp = queue.get("RedrivePolicy")
        if not rp or int(rp.get("maxReceiveCount", 0)) < 1 or ref_name(rp.get("deadLetterTargetArn")) not in res:
            problems.append(f"{name}.{ev_name}: queue has no dead-letter queue")

if problems:
    sys.exit("template.yaml:\n  " + "\n  ".join(problems))
print(f"template.yaml: {len(functions)} functions pass the structural rules")
