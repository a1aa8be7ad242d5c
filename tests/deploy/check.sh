#!/usr/bin/env bash
# Checks the deployment files: template.yaml with cfn-lint (every finding,
# informational ones included) and `sam validate --lint` (SAM's own transform
# plus cfn-lint on its output), then the rules of check_template.py (the
# template agrees with the code), check_samconfig.py (every environment gets
# every parameter, secrets only from deploy/<env>.secrets.yaml) and
# check_events.py (events/ are well formed), then the rules on SAM's
# translated template (tests/deploy/rehearsal.py --translate-only).
# Offline: fake credentials, no telemetry; no AWS call is made.
# Tools: the venvs tests/stack/up.sh installs (.venv, .venv-sam).
set -euo pipefail
cd "$(dirname "$0")/../.."

find_tool() {
  for dir in .venv/bin .venv-sam/bin; do
    if [ -x "$dir/$1" ]; then
      echo "$dir/$1"
      return
    fi
  done
  echo "tests/deploy/check.sh: $1 not found in .venv/bin or .venv-sam/bin; tests/stack/up.sh installs it" >&2
  exit 1
}
cfn_lint=$(find_tool cfn-lint)
sam=$(find_tool sam)
python=$(dirname "$cfn_lint")/python

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_SESSION_TOKEN=test
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0

"$cfn_lint" --include-checks I -- template.yaml
echo "cfn-lint $("$cfn_lint" --version | awk '{print $2}'): template.yaml has no findings (errors, warnings, informational)"
"$sam" validate --lint --region us-east-1 --template template.yaml
"$python" tests/deploy/check_template.py template.yaml
"$python" tests/deploy/check_samconfig.py
"$python" tests/deploy/check_events.py
# The template as SAM's translator turns it into CloudFormation, checked again
# (the part of tests/deploy/rehearsal.sh that needs no running stack).
"$python" tests/deploy/rehearsal.py --translate-only
