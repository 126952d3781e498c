#!/usr/bin/env bash
# Rebuild benchmark on the local stack: seeds N events, rebuilds with a raw
# parallel scan of the same table timed first, then doubles the table and
# does it again, so the rebuild's peak RSS can be compared at N and 2N.
#   scripts/rebuild-bench.sh [N=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
bin=$(mktemp -d)/votes
go build -o "$bin" ./cmd/votes
log=$(mktemp)
"$bin" dev --addr 127.0.0.1:0 >"$log" 2>&1 &
dev=$!
trap 'kill -INT $dev 2>/dev/null; wait $dev 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^listening on' "$log" && break; sleep 0.1; done
endpoint=$(sed -n 's/^aws endpoint \([^ ]*\).*/\1/p' "$log")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; stack at $endpoint"
for round in 1 2; do
  "$bin" seed --endpoint "$endpoint" --events "$n" --seed "$round"
  echo "== rebuild with $((n * round)) events in the table"
  "$bin" rebuild --endpoint "$endpoint" --compare-scan --segments 8 --page 20000
  "$bin" verify --endpoint "$endpoint" "$((round + 1))" 2>/dev/null | tail -n 1
done
