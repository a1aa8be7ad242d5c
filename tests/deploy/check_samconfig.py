"""samconfig.toml gives every environment every parameter it needs, and no secret.

For each environment's `deploy` section: the parameter_overrides name only
template parameters; together with the secrets file they reference (checked
with deploy/secrets.example.yaml in its place) they cover every parameter
without a default; NoEcho parameters come from that file only, never inline.
"""

import re
import sys
import tomllib
from pathlib import Path

import yaml
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
template, errors = decode(str(ROOT / "template.yaml"))
if errors:
    sys.exit(f"template.yaml does not decode: {errors}")
params = template["Parameters"]
required = {k for k, p in params.items() if "Default" not in p}
secret = {k for k, p in params.items() if p.get("NoEcho")}
example = yaml.safe_load((ROOT / "deploy/secrets.example.yaml").read_text())
config = tomllib.loads((ROOT / "samconfig.toml").read_text())
problems = []

for env in ("default", "production"):
    build = config.get(env, {}).get("build", {}).get("parameters", {})
    # CodeUri is the workspace root: SAM's cache would hash target/ on every build.
    if build.get("cached", False):
        problems.append(f"[{env}.build.parameters]: cached must be false (SAM would hash the whole workspace, target/ included)")
    deploy = config.get(env, {}).get("deploy", {}).get("parameters")
    if not deploy:
        problems.append(f"[{env}.deploy.parameters] is missing")
        continue
    if not deploy.get("resolve_s3") or "CAPABILITY_IAM" not in str(deploy.get("capabilities")):
        problems.append(f"[{env}.deploy.parameters]: needs resolve_s3 = true and CAPABILITY_IAM")
    stack = config.get(env, {}).get("global", {}).get("parameters", {}).get("stack_name", "")
    # Function names are "<stack>-check-bigquery-job" (at most 64 characters).
    if not re.match(r"^[a-z][a-z0-9-]{0,44}$", stack):
        problems.append(f"[{env}]: stack_name {stack!r} must be short lowercase (names derive from it)")
    overrides = deploy.get("parameter_overrides", [])
    if isinstance(overrides, str):
        problems.append(f"[{env}.deploy.parameters]: parameter_overrides must be a list (one parameter a line)")
        continue
    given, files = {}, []
    for item in overrides:
        if item.startswith("file://"):
            files.append(item[len("file://"):])
            continue
        m = re.match(r'^([A-Za-z0-9]+)=("?)(.*)\2$', item)
        if not m:
            problems.append(f"[{env}]: {item!r} is not Key=Value")
            continue
        if " " in m[3] and not m[2]:
            problems.append(f"[{env}]: {item!r} has a space: quote the value (Key=\"a b\")")
        given[m[1]] = m[3]
    for f in files:
        if not re.match(r"^deploy/[a-z]+\.secrets\.yaml$", f):
            problems.append(f"[{env}]: {f} must be deploy/<env>.secrets.yaml (ignored by deploy/.gitignore)")
        given.update({k: str(v) for k, v in example.items()})
    for k in sorted(set(given) - set(params)):
        problems.append(f"[{env}]: {k} is not a parameter of template.yaml")
    for k in sorted(required - set(given)):
        problems.append(f"[{env}]: {k} has no default and is not given")
    # Alerting: the alarms exist either way; someone must hear them.
    if not given.get("AlarmTopicArn"):
        problems.append(f"[{env}]: AlarmTopicArn is not given (no one is told of a DLQ message or a failing function)")
    inline = {m for m in secret if any(i.startswith(f"{m}=") for i in overrides)}
    for k in sorted(inline):
        problems.append(f"[{env}]: secret {k} must come from the secrets file, not samconfig.toml")

for k in sorted(secret - set(example)):
    problems.append(f"deploy/secrets.example.yaml: lacks the secret {k}")
for k in sorted(set(example) - set(params)):
    problems.append(f"deploy/secrets.example.yaml: {k} is not a parameter of template.yaml")

if problems:
    sys.exit("samconfig.toml:\n  " + "\n  ".join(problems))
print("samconfig.toml: default and production give every parameter; secrets only from deploy/<env>.secrets.yaml")
