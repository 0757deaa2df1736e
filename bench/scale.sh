#!/usr/bin/env bash
# Memory and read latency with many tenants: Tessera seeded through its API
# with SCALE_TENANTS tenants (default 100,000), each with 3 connections (a
# config with a secret field per integration), against the same server kind
# seeded with 100 tenants.
#
#   bench/scale.sh                       100 vs 100,000 tenants (~6 min on two cores)
#   SCALE_TENANTS=20000 bench/scale.sh   a smaller run
#   SKIP_BUILD=1 bench/scale.sh          reuse target/release/tessera
#
# For each size it reports: seeding time, RSS right after seeding (idle),
# resolved reads of random tenants and integrations (wrk -t2 -c32, ROUNDS x
# DURATION s): requests/s, p50/p99 latency, server CPU per read, and the
# highest RSS during the reads. The goals it checks: RSS at the large size under
# 200 MiB, and p99 at the large size within 1.5x of the p99 at 100 tenants.
# See bench/README.md ("Scale").
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

SCALE_TENANTS=${SCALE_TENANTS:-100000}
SMALL_TENANTS=${SMALL_TENANTS:-100}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
SEED_THREADS=${SEED_THREADS:-8}
SKIP_BUILD=${SKIP_BUILD:-0}
TESSERA_BIN=${TESSERA_BIN:-"${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera"}
TESSERA_ENV=${TESSERA_ENV:-}
KEEP_TMP=${KEEP_TMP:-0}
RESULTS_OUT=${RESULTS_OUT:-}
export BENCH_LUA_DIR="$BENCH_DIR/lua" SCALE_THREADS=$THREADS

PID=""
WORK=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n "$PID" ]] && stop_pid "$PID" tessera
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if [[ "$KEEP_TMP" == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

ensure_wrk
for t in curl jq; do command -v "$t" >/dev/null || die "$t is required"; done
if [[ "$SKIP_BUILD" != 1 ]]; then
    log "building tessera (cargo build --release -p tessera, nice 10)"
    (cd "$ROOT" && nice -n 10 cargo build --release -p tessera --locked >&2) || die "cargo build failed"
fi
[[ -x "$TESSERA_BIN" ]] || die "no tessera binary at $TESSERA_BIN"
WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/tessera-scale.XXXXXX")
REPORT="$WORK/report.txt"
: >"$REPORT"

# start SIZE: a fresh Tessera (SQLite, its own data dir) seeded with SIZE tenants x 3 connections.
start() {
    local size=$1 data="$WORK/data-$1"
    mkdir -p "$data"
    ROOT_TOKEN=$(rand_hex 24)
    local master
    master=$(head -c 32 /dev/urandom | base64)
    (
        for setting in $TESSERA_ENV; do export "${setting?}"; done
        export TESSERA_LISTEN=127.0.0.1:0 TESSERA_DATA_DIR="$data" TESSERA_MASTER_KEY="$master" \
            TESSERA_ROOT_TOKEN="$ROOT_TOKEN" TESSERA_LOG=warn
        exec "$TESSERA_BIN" serve
    ) >"$WORK/tessera-$size.out" 2>"$WORK/tessera-$size.err" &
    PID=$!
    local addr=""
    for _ in $(seq 1 300); do
        kill -0 "$PID" 2>/dev/null || die "tessera exited during start-up: $(tail -n 5 "$WORK/tessera-$size.err")"
        addr=$(sed -n 's#^tessera listening on http://##p' "$WORK/tessera-$size.out" | head -n1)
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || die "tessera printed no listening address within 30 s"
    URL="http://$addr"
    AUTH="Authorization: Bearer $ROOT_TOKEN"
    sleep 1
    RSS_FRESH=$(rss_kib "$PID")
    for k in 0 1 2; do
        curl -sf -o /dev/null -X POST "$URL/integrations" -H "$AUTH" -H 'content-type: application/json' \
            -d "{\"key\":\"svc$k\",\"name\":\"Service $k\",\"configSchema\":[{\"key\":\"region\",\"type\":\"string\"},{\"key\":\"api_key\",\"type\":\"secret\"}]}" ||
            die "cannot register svc$k"
    done
    local t0=$SECONDS
    python3 "$BENCH_DIR/seed.py" "$URL" "$ROOT_TOKEN" "$size" "$SEED_THREADS" || die "seeding $size tenants failed"
    SEED_S=$((SECONDS - t0))
    local tenants connections
    tenants=$(curl -sf "$URL/metrics" | awk '$1 == "tessera_tenants" {print $2}')
    [[ "$tenants" == "$size" ]] || die "seeded $tenants tenants, wanted $size"
    connections=$(curl -sf "$URL/metrics" | awk '$1 ~ /^tessera_connections\{/ {n += $2} END {print n}')
    [[ "$connections" == "$((size * 3))" ]] || die "seeded $connections connections, wanted $((size * 3))"
    log "seeded $size tenants and $connections connections in ${SEED_S}s"
    # A last check: one resolved view holds its decrypted secret.
    curl -sf "$URL/tenants/t000000/integrations/svc1/resolved" -H "$AUTH" | grep -q '"api_key":"' ||
        die "the resolved view of t000000/svc1 lacks its secret"
    sleep 2
    RSS_SEEDED=$(rss_kib "$PID")
}

# reads SIZE: ROUNDS wrk runs of random resolved reads; sets the medians.
reads() {
    local size=$1 r out cpu0 cpu1 max_rss=0 rss
    local -a rps p50 p99 cpu
    # One warm-up run (not counted), as in bench/run.sh.
    SCALE_TENANTS=$size wrk -t"$THREADS" -c"$CONNS" -d2s -H "$AUTH" -s "$BENCH_DIR/lua/read_random.lua" "$URL" >/dev/null 2>&1
    for r in $(seq 1 "$ROUNDS"); do
        out="$WORK/read-$size-$r.txt"
        cpu0=$(cpu_ticks "$PID")
        SCALE_TENANTS=$size wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency \
            -H "$AUTH" -s "$BENCH_DIR/lua/read_random.lua" "$URL" >"$out" 2>&1
        cpu1=$(cpu_ticks "$PID")
        rss=$(rss_kib "$PID")
        ((rss > max_rss)) && max_rss=$rss
        local line
        line=$(grep '^BENCH ' "$out") || die "wrk printed no summary: $(tail -n 5 "$out")"
        local n non2xx
        n=$(sed 's/.* requests=\([0-9]*\).*/\1/' <<<"$line")
        non2xx=$(sed 's/.* non2xx=\([0-9]*\).*/\1/' <<<"$line")
        [[ "$non2xx" == 0 ]] || die "$non2xx reads failed in round $r"
        rps+=("$(sed 's/.* rps=\([0-9.]*\).*/\1/' <<<"$line")")
        p50+=("$(sed 's/.* p50_ms=\([0-9.]*\).*/\1/' <<<"$line")")
        p99+=("$(sed 's/.* p99_ms=\([0-9.]*\).*/\1/' <<<"$line")")
        cpu+=("$(awk -v t=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v n="$n" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')")
        sleep 1
    done
    median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
    RPS=$(median "${rps[@]}") P50=$(median "${p50[@]}") P99=$(median "${p99[@]}") CPU=$(median "${cpu[@]}")
    RSS_READS=$max_rss
    log "reads over $size tenants: ${RPS} req/s, p50 ${P50} ms, p99 ${P99} ms, ${CPU} us CPU/read, RSS ${RSS_READS} KiB"
}

log "tessera: $TESSERA_BIN; sizes: $SMALL_TENANTS and $SCALE_TENANTS tenants x 3 connections; rounds=$ROUNDS x ${DURATION}s; wrk -t$THREADS -c$CONNS"
declare -A ROW P99_AT RSS_AT
for size in "$SMALL_TENANTS" "$SCALE_TENANTS"; do
    start "$size"
    reads "$size"
    ROW[$size]="| $size | $((size * 3)) | $SEED_S | $((RSS_FRESH / 1024)) | $((RSS_SEEDED / 1024)) | $((RSS_READS / 1024)) | $RPS | $P50 | $P99 | $CPU |"
    P99_AT[$size]=$P99
    RSS_AT[$size]=$RSS_READS
    stop_pid "$PID" tessera
    PID=""
done 2>&1
{
    echo "Scale: resolved reads of random tenants and integrations ($(nproc) cores, noisy; medians of $ROUNDS x ${DURATION}s)"
    echo
    echo "| tenants | connections | seeding (s) | RSS fresh (MiB) | RSS seeded, idle (MiB) | RSS during reads (MiB) | reads/s | p50 (ms) | p99 (ms) | CPU per read (us) |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for size in "$SMALL_TENANTS" "$SCALE_TENANTS"; do echo "${ROW[$size]}"; done
    echo
    ratio=$(awk -v a="${P99_AT[$SCALE_TENANTS]}" -v b="${P99_AT[$SMALL_TENANTS]}" 'BEGIN {printf "%.2f", a / b}')
    rss_mib=$((RSS_AT[$SCALE_TENANTS] / 1024))
    echo "p99 at $SCALE_TENANTS tenants / p99 at $SMALL_TENANTS: ${ratio}x (goal: at most 1.5x)"
    echo "RSS at $SCALE_TENANTS tenants during reads: ${rss_mib} MiB (goal: under 200 MiB)"
} | tee "$REPORT"
[[ -n "$RESULTS_OUT" ]] && cp "$REPORT" "$RESULTS_OUT"
exit 0
