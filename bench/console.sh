#!/usr/bin/env bash
# How fast the console's pages render with a large store: 10,000 tenants and
# 100,000 audit events (the console's goal: under 50 ms a page, server-side).
#
#   bench/console.sh                 builds release, fills a fresh SQLite store, measures
#   SKIP_BUILD=1 bench/console.sh    uses the existing release binary
#   TENANTS=10000 EVENTS=100000 DURATION=5 bench/console.sh
#
# Each page is requested by wrk over one connection (one request in flight:
# the time is the page's own, not a queue's) for DURATION seconds, signed in
# with a session cookie. Printed per page: requests, p50 and p99 latency, and
# the server's CPU time per page (user+system from /proc/<pid>/stat over the
# run, divided by the pages served). The machine is shared and noisy: compare
# medians of several runs, not single figures.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TENANTS=${TENANTS:-10000}
EVENTS=${EVENTS:-100000}
DURATION=${DURATION:-5}
SKIP_BUILD=${SKIP_BUILD:-0}
TESSERA_BIN=${TESSERA_BIN:-"${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera"}
ROOT_TOKEN=bench-root-token-0123456789abcdefghijklmnopqrstuvwxyz

log() { printf '[console bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y -q wrk >&2; }
if [[ "$SKIP_BUILD" != 1 ]]; then
    log "building release"
    (cd "$ROOT" && cargo build --release --locked -p tessera >&2)
fi

WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/tessera-console-bench.XXXXXX")
PID=""
cleanup() {
    [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
TESSERA_LISTEN=127.0.0.1:$PORT TESSERA_DATA_DIR="$WORK/data" TESSERA_ROOT_TOKEN=$ROOT_TOKEN \
    TESSERA_MASTER_KEY=$(head -c 32 /dev/urandom | base64) TESSERA_LOG=warn \
    TESSERA_RATE_LIMIT_ANONYMOUS=off TESSERA_AUDIT_CHECKPOINT_INTERVAL=0 \
    "$TESSERA_BIN" serve >"$WORK/out.log" 2>"$WORK/err.log" &
PID=$!
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done

api() { curl -sf -H "Authorization: Bearer $ROOT_TOKEN" -H 'content-type: application/json' "$@"; }

log "creating $TENANTS tenants"
seq -f 'tenant-%05g' 1 "$TENANTS" | xargs -P 4 -I{} curl -sf -o /dev/null -XPOST "$BASE/tenants" \
    -H "Authorization: Bearer $ROOT_TOKEN" -H 'content-type: application/json' -d '{"id":"{}","name":"Tenant {}"}'
api -XPOST "$BASE/integrations" -d '{"key":"langfuse","name":"Langfuse","configSchema":[{"key":"base_url","type":"string"},{"key":"secret_key","type":"secret"}]}' >/dev/null
api -XPUT "$BASE/tenants/tenant-00001/integrations/langfuse/config" -d '{"config":{"base_url":"https://cloud.langfuse.com","secret_key":"sk_bench"}}' >/dev/null
api -XPUT "$BASE/tenants/tenant-00001/secrets/stripe/key" -d '{"value":"sk_live_bench"}' >/dev/null

log "writing audit events up to $EVENTS (audited secret reads)"
count_events() { api "$BASE/audit/verify" | python3 -c 'import json,sys; print(json.load(sys.stdin)["headSeq"])'; }
while [[ $(count_events) -lt $EVENTS ]]; do
    wrk -t2 -c16 -d5s -H "Authorization: Bearer $ROOT_TOKEN" "$BASE/tenants/tenant-00001/secrets/stripe/key" >/dev/null
done
log "audit events: $(count_events)"

COOKIE=$(curl -s -o /dev/null -D - -XPOST "$BASE/console/sign-in" -H 'sec-fetch-site: same-origin' \
    --data-urlencode "token=$ROOT_TOKEN" | awk -F'[ ;]' 'tolower($1) == "set-cookie:" {print $2}')
[[ -n "$COOKIE" ]] || { log "sign-in failed"; exit 1; }

cpu_ticks() { sed 's/.*) //' "/proc/$PID/stat" | awk '{print $12 + $13}'; }
HZ=$(getconf CLK_TCK)
printf '\n%-48s %9s %9s %9s %14s\n' "page ($TENANTS tenants, $(count_events) audit events)" requests "p50 ms" "p99 ms" "CPU/page (ms)"
for page in /console /console/tenants "/console/tenants?q=tenant-09" "/console/tenants?after=tenant-05000" \
    /console/tenants/tenant-00001 /console/configuration "/console/configuration?tenant=tenant-00001" \
    /console/audit "/console/audit?tenant=tenant-00001" "/console/audit?action=tenant.create" \
    "/console/tenants/tenant-00001/secrets" /console/integrations /console/api-keys; do
    before=$(cpu_ticks)
    out=$(wrk -t1 -c1 -d"${DURATION}s" --latency -H "Cookie: $COOKIE" "$BASE$page")
    after=$(cpu_ticks)
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    [[ -z "$non2xx" ]] || { log "$page answered $non2xx non-2xx"; exit 1; }
    ms() { awk -v p="$1" '$1 == p {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; printf "%.2f", v}' <<<"$out"; }
    cpu=$(awk -v a="$after" -v b="$before" -v n="$reqs" -v hz="$HZ" 'BEGIN {printf "%.2f", (a - b) * 1000 / hz / n}')
    printf '%-48s %9s %9s %9s %14s\n' "$page" "$reqs" "$(ms 50%)" "$(ms 99%)" "$cpu"
done
