#!/usr/bin/env bash
# Instructions per resolved read, counted by valgrind's callgrind: a figure
# that does not move with the machine's noise (the same binary and inputs
# give the same count within ~2%), for comparing two builds of the read
# path on a shared machine where CPU time per request is blurred.
#
# Counts user space only (system calls are not counted), so it shows what a
# change does to Tessera's own code and SQLite, not to the kernel's share.
# Valgrind does not emulate SHA-NI, so SHA-256 runs in software here and
# counts more than it costs on a CPU that has it.
#
#   bench/instructions.sh                          # target/release/tessera
#   TESSERA_BIN=a bench/instructions.sh; TESSERA_BIN=b bench/instructions.sh
#   READS=5000 TENANTS=100 bench/instructions.sh
#
# Seeds TENANTS tenants x 3 connections through the API (bench/seed.py), runs
# 400 reads to warm up, zeroes the counters, runs READS reads of random
# tenants and integrations from 4 keep-alive connections (bench/load.py)
# with the root token,
# and divides the instructions counted by READS. The view cache lives 60 s
# here (TESSERA_VIEW_CACHE_SECONDS), so that valgrind's ~50x slowdown does not
# turn cache hits into misses, and the webhook worker scans hourly
# (TESSERA_WEBHOOK_INTERVAL): builds before ac42119 emptied the view cache at
# each of its scans, which made their count depend on timing.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_NAME=instructions
. "$BENCH_DIR/lib.sh"

TESSERA_BIN=${TESSERA_BIN:-"${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera"}
TENANTS=${TENANTS:-100}
READS=${READS:-2000}
command -v valgrind >/dev/null || die "valgrind is required (Debian: apt-get install valgrind)"
command -v callgrind_control >/dev/null || die "callgrind_control (valgrind) is required"
[[ -x "$TESSERA_BIN" ]] || die "no tessera binary at $TESSERA_BIN (cargo build --release -p tessera)"

WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/tessera-instructions.XXXXXX")
PID=""
cleanup() {
    [[ -n "$PID" ]] && stop_pid "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

TOKEN=$(rand_hex 24)
(
    export TESSERA_LISTEN=127.0.0.1:0 TESSERA_DATA_DIR="$WORK/data" TESSERA_ROOT_TOKEN="$TOKEN" TESSERA_LOG=warn \
        TESSERA_MASTER_KEY="$(head -c 32 /dev/urandom | base64)" TESSERA_VIEW_CACHE_SECONDS=60 \
        TESSERA_WEBHOOK_INTERVAL=3600
    exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$TESSERA_BIN" serve
) >"$WORK/out" 2>"$WORK/err" &
PID=$!
addr=""
for _ in $(seq 1 600); do
    kill -0 "$PID" 2>/dev/null || die "tessera exited: $(tail -n 5 "$WORK/err")"
    addr=$(sed -n 's#^tessera listening on http://##p' "$WORK/out" | head -n1)
    [[ -n "$addr" ]] && break
    sleep 0.2
done
[[ -n "$addr" ]] || die "tessera printed no listening address within 120 s"
for k in 0 1 2; do
    curl -sf -o /dev/null -X POST "http://$addr/integrations" -H "Authorization: Bearer $TOKEN" \
        -H 'content-type: application/json' \
        -d "{\"key\":\"svc$k\",\"name\":\"Service $k\",\"configSchema\":[{\"key\":\"region\",\"type\":\"string\"},{\"key\":\"api_key\",\"type\":\"secret\"}]}" ||
        die "cannot register svc$k"
done
python3 "$BENCH_DIR/seed.py" "http://$addr" "$TOKEN" "$TENANTS" 4 || die "seeding failed"
python3 "$BENCH_DIR/load.py" "$addr" "$TOKEN" 400 4 "$TENANTS" || die "warm-up reads failed"
callgrind_control -z "$PID" >/dev/null
python3 "$BENCH_DIR/load.py" "$addr" "$TOKEN" "$READS" 4 "$TENANTS" || die "reads failed"
callgrind_control -d "$PID" >/dev/null
sleep 1
out=$(ls -t "$WORK"/callgrind.out* | head -n1)
total=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
[[ -n "$total" ]] || die "callgrind wrote no totals"
log "binary: $TESSERA_BIN; $TENANTS tenants; $READS resolved reads after 400 to warm up"
echo "instructions per resolved read: $((total / READS))"
