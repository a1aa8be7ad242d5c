#!/usr/bin/env bash
# The deploy rehearsal: what docs/deploy.md's `sam build` + `sam deploy` would
# create, as far as it can run here. cfn-lint and `sam validate --lint`, SAM's
# translator output checked by rules on the translated resources, the stack
# created on moto's CloudFormation (the resource types moto implements), and
# the four function binaries run behind the Lambda runtime API against that
# stack's queues and bucket, on a Postgres database created empty for the run.
# Needs the local stack (tests/stack/up.sh). About a minute after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
set -a; source .stack/env; set +a
export AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true
echo "== structural checks (tests/deploy/check.sh)"
bash tests/deploy/check.sh
echo "== host builds of the four functions"
cargo build -q -p create-segment -p check-bigquery-job -p segment-cronjob -p report-with-segment
echo "== rehearsal"
.venv/bin/python tests/deploy/rehearsal.py
