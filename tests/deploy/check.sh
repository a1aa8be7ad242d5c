#!/usr/bin/env bash
# Checks template.yaml with both cfn-lint and `sam validate --lint` (each catches
# errors the other misses). Needs the venvs tests/stack/up.sh installs. Offline:
# fake credentials, no AWS call.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in .venv/bin/cfn-lint .venv-sam/bin/sam; do
  [ -x "$tool" ] || { echo "$tool is missing: run tests/stack/up.sh" >&2; exit 1; }
done
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0
.venv/bin/cfn-lint template.yaml
echo "cfn-lint: template.yaml has no findings"
.venv-sam/bin/sam validate --lint --region us-east-1 --template template.yaml
.venv/bin/python tests/deploy/check_template.py template.yaml
