# Sourced by the benchmarks (cold_start.sh, arm64.sh): the local stack's
# variables, `cargo lambda watch` serving the Lambda runtime API on $PORT
# (stopped on exit), FUNCTIONS, and one cheap event per function in EVENT.
# Needs PORT, and PATH holding cargo-lambda.
set -a; source .stack/env; set +a
export CHECK_JOB_QUEUE_URL=${AWS_ENDPOINT_URL}/123456789012/bench
cargo-lambda lambda watch --only-lambda-apis -A 127.0.0.1 -P "$PORT" >/dev/null 2>&1 &
EMU=$!
trap 'kill $EMU 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

FUNCTIONS=(create-segment check-bigquery-job segment-cronjob report-with-segment segment-api)
sqs_bad='{"Records":[{"messageId":"m1","receiptHandle":"r","body":"{not json","attributes":{},"messageAttributes":{},"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:1:q","awsRegion":"us-east-1"}]}'
declare -A EVENT=(
  [create-segment]='{"action":"delete","accountId":"00000000-0000-4000-8000-000000000000","segmentId":"00000000-0000-4000-8000-000000000001"}'
  [check-bigquery-job]=$sqs_bad
  [segment-cronjob]=$sqs_bad
  [report-with-segment]='{"accountId":"00000000-0000-4000-8000-000000000000","object":"session","dateRange":{"startDate":"2024-06-01","endDate":"2024-06-30"},"segments":["00000000-0000-4000-8000-000000000001"]}'
  [segment-api]='{"action":"get","accountId":"00000000-0000-4000-8000-000000000000","segmentId":"00000000-0000-4000-8000-000000000001"}'
)
