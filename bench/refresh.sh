#!/usr/bin/env bash
# Tessera OAuth token refresh worker (issue "Refresh throughput"):
#   1. tokens refreshed per second by one replica, then by two replicas on the
#      same PostgreSQL database, against a real local OAuth provider
#      (harness/oauth-provider: oauth2-mock-server behind a strict front that
#      accepts only refresh tokens it issued, each once);
#   2. no double refresh with two replicas: the provider must count exactly N
#      successful refresh grants, N distinct refresh tokens presented, 0 refused;
#   3. the worker's scan cost with SCAN_ROWS credentials of which DUE_PCT% are due:
#      the claim statement of claim_due_credentials and the count_due_credentials
#      query, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL (inside BEGIN .. ROLLBACK),
#      timed with the sqlite3 CLI on SQLite; both must use the credentials_due index.
#
#   bench/refresh.sh                     N=2000 tokens, REPEATS=3, SCAN_ROWS=100000 (~3.5 min once built)
#   N=500 REPEATS=1 bench/refresh.sh     quick check
#   PARTS=scan bench/refresh.sh          only the scan cost
#   SKIP_BUILD=1 bench/refresh.sh        reuse target/release/tessera
#   PROVIDER_DELAY_MS=100 PARTS=throughput bench/refresh.sh   the provider answers each refresh 100 ms late
#
# See bench/REFRESH.md. Builds Tessera unless SKIP_BUILD=1, starts the provider
# (npm ci --prefix harness/oauth-provider if node_modules is missing) and the
# servers on loopback ports the kernel picks, stops everything it started and
# drops the PostgreSQL databases it created on exit. Exits 1 if a check fails.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

N=${N:-2000}                       # seeded OAuth connections (one tenant each), all due in each timed run
REPEATS=${REPEATS:-3}              # timed runs per replica count
REPLICAS=${REPLICAS:-"1 2"}        # replica counts to time
PARALLEL=${PARALLEL:-8}            # parallel OAuth flows while seeding (xargs -P)
PROVIDER_DELAY_MS=${PROVIDER_DELAY_MS:-0} # the provider holds each refresh this long (a remote IdP's latency)
SCAN_ROWS=${SCAN_ROWS:-100000}     # credentials for the scan cost
DUE_PCT=${DUE_PCT:-1}              # % of them due
SCAN_REPEATS=${SCAN_REPEATS:-5}    # EXPLAIN ANALYZE runs per statement (median)
PARTS=${PARTS:-"throughput scan"}
SCAN_DATABASES=${SCAN_DATABASES:-"postgres sqlite"}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-600} # give up on a timed run after this many seconds
STALL_TIMEOUT=${STALL_TIMEOUT:-30}  # ... or after this many seconds without one more refresh
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
PG_USER=${PG_USER:-postgres}
SKIP_BUILD=${SKIP_BUILD:-0}
TESSERA_BIN=${TESSERA_BIN:-"${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera"}
PROVIDER_DIR=${PROVIDER_DIR:-"$ROOT/harness/oauth-provider"}
KEEP_TMP=${KEEP_TMP:-0}
RESULTS_OUT=${RESULTS_OUT:-}

KEY=bench-crm # the OAuth integration
APP_REDIRECT=https://app.example/oauth/done
APP_REDIRECT_ENC=https%3A%2F%2Fapp.example%2Foauth%2Fdone
REFRESH_BEFORE=300 # Tessera's default TESSERA_REFRESH_BEFORE, set explicitly below

BENCH_NAME=refresh
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- cleanup
WORK=""
PIDS=()
PID_NAMES=()
PG_DBS=()

forget_pid() {
    local i
    for i in "${!PIDS[@]}"; do
        [[ "${PIDS[$i]}" == "$1" ]] && { unset 'PIDS[i]' 'PID_NAMES[i]'; }
    done
    PIDS=("${PIDS[@]}"); PID_NAMES=("${PID_NAMES[@]}")
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local i
    # Closing the fifo's write end ends the provider too (it exits when stdin closes).
    exec 9>&-
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

# ---------------------------------------------------------------- tools
for t in curl python3 node psql createdb dropdb pg_isready; do command -v "$t" >/dev/null || die "$t is required"; done
pg_isready -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1 || die "PostgreSQL is not up at $PG_HOST:$PG_PORT"
HAVE_SQLITE3=0
command -v sqlite3 >/dev/null && HAVE_SQLITE3=1

if [[ "$SKIP_BUILD" != 1 || ! -x "$TESSERA_BIN" ]]; then
    log "building tessera (cargo build --release -p tessera, nice 10)"
    (cd "$ROOT" && nice -n 10 cargo build --release -p tessera >&2) ||
        die "cargo build failed; SKIP_BUILD=1 reuses the existing $TESSERA_BIN (if any)"
fi
[[ -x "$TESSERA_BIN" ]] || die "no tessera binary at $TESSERA_BIN"
if [[ " $PARTS " == *" throughput "* && ! -d "$PROVIDER_DIR/node_modules/oauth2-mock-server" ]]; then
    log "installing the OAuth provider (npm ci --prefix $PROVIDER_DIR)"
    npm ci --prefix "$PROVIDER_DIR" >&2 || die "npm ci failed"
fi

WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/tessera-refresh.XXXXXX")
RESULTS="$WORK/results.txt"
: >"$RESULTS"
FAILED=0
fail() { FAILED=1; log "CHECK FAILED: $*"; echo "CHECK FAILED: $*" >>"$RESULTS"; }

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", (s > 0 ? n / s : 0)}'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0; }
# CPU ticks of every PostgreSQL process (server and backends) still alive.
pg_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" {s += $14 + $15} END {print s + 0}'; }
machine_ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)
jfield() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

psql_db() { # psql_db DB SQL...: tuples only, unaligned, stop on error
    local db=$1; shift
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$db" -tA "$@"
}

# ---------------------------------------------------------------- Tessera
MASTER_KEY=$(head -c 32 /dev/urandom | base64)
ROOT_TOKEN=$(rand_hex 24)

# launch_tessera NAME DATABASE_URL INTERVAL: starts `tessera serve` in the
# background (TESSERA_PID); wait_tessera NAME then waits for its address (URL).
declare -A T_PID T_URL
launch_tessera() {
    local name=$1 db_url=$2 interval=$3 dir="$WORK/$1"
    mkdir -p "$dir/data"
    : >"$dir/serve.out"
    # exec (subshell -> env -> tessera) so that $! is the server itself.
    (exec env TESSERA_LISTEN=127.0.0.1:0 TESSERA_DATA_DIR="$dir/data" DATABASE_URL="$db_url" \
        TESSERA_MASTER_KEY="$MASTER_KEY" TESSERA_ROOT_TOKEN="$ROOT_TOKEN" TESSERA_LOG=warn \
        TESSERA_ALLOW_LOOPBACK_HTTP=true TESSERA_ALLOWED_REDIRECT_URIS="$APP_REDIRECT" \
        TESSERA_REFRESH_INTERVAL="$interval" TESSERA_REFRESH_BEFORE="$REFRESH_BEFORE" \
        "$TESSERA_BIN" serve >>"$dir/serve.out" 2>>"$dir/serve.err") &
    T_PID[$name]=$!
    PIDS+=("${T_PID[$name]}"); PID_NAMES+=("tessera-$name")
}
wait_tessera() {
    local name=$1 dir="$WORK/$1" pid=${T_PID[$1]} addr=""
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || die "tessera $name exited during start-up: $(tail -n 5 "$dir/serve.err")"
        addr=$(sed -n 's#^tessera listening on http://##p' "$dir/serve.out" 2>/dev/null | tail -n1 || true)
        [[ -n "$addr" ]] && break
        sleep 0.05
    done
    [[ -n "$addr" ]] || die "tessera $name printed no listening address within 15 s"
    T_URL[$name]="http://$addr"
}
stop_tessera() {
    local name=$1 pid=${T_PID[$1]} dir="$WORK/$1"
    stop_pid "$pid" "tessera-$name"
    forget_pid "$pid"
    : >"$dir/serve.out" # the next start prints a new address
}
# log_problems NAME: lines of the server's log that mention error/panic/lease.
log_problems() {
    local f="$WORK/$1/serve.err" n
    [[ -f "$f" ]] || return 0
    n=$(grep -c -i -E '\b(error|panic)|lease lost|refresh failed' "$f" || true)
    if ((n > 0)); then
        log "tessera $1 log: $n lines mention error/panic/lease lost/refresh failed, first: $(grep -m1 -i -E '\b(error|panic)|lease lost|refresh failed' "$f" | head -c 300)"
        echo "$n"
    else
        echo 0
    fi
}

api() { # api METHOD URL [BODY] -> status; body in $WORK/last.json (root token)
    local args=(-sS -o "$WORK/last.json" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $ROOT_TOKEN" --max-time 30)
    [[ -n "${3:-}" ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    curl "${args[@]}" "$2"
}
expect() { # expect STATUS METHOD URL [BODY]
    local want=$1 got; shift
    got=$(api "$@") || die "curl failed: $1 $2"
    [[ "$got" == "$want" ]] || die "$1 $2 answered $got (wanted $want): $(head -c 600 "$WORK/last.json")"
}

# ---------------------------------------------------------------- provider
PROVIDER_PID=""
start_provider() {
    CLIENT_ID=tessera-bench
    CLIENT_SECRET="secret-$(rand_hex 16)"
    mkfifo "$WORK/provider.in"
    # The provider exits when its stdin closes: fd 9 holds the fifo open until we exit.
    (exec env CLIENT_ID="$CLIENT_ID" CLIENT_SECRET="$CLIENT_SECRET" node "$PROVIDER_DIR/provider.mjs" \
        <"$WORK/provider.in" >"$WORK/provider.out" 2>"$WORK/provider.err") &
    PROVIDER_PID=$!
    PIDS+=("$PROVIDER_PID"); PID_NAMES+=(oauth-provider)
    exec 9>"$WORK/provider.in"
    local line=""
    for _ in $(seq 1 300); do
        kill -0 "$PROVIDER_PID" 2>/dev/null || die "the OAuth provider exited: $(tail -n 5 "$WORK/provider.err")"
        line=$(head -n1 "$WORK/provider.out" 2>/dev/null || true)
        [[ "$line" == *control* ]] && break
        sleep 0.1
    done
    [[ "$line" == *control* ]] || die "the OAuth provider printed no addresses within 30 s"
    P_AUTHORIZE=$(jfield 'd["authorizeUrl"]' <<<"$line")
    P_TOKEN=$(jfield 'd["tokenUrl"]' <<<"$line")
    P_REVOKE=$(jfield 'd["revokeUrl"]' <<<"$line")
    P_CONTROL=$(jfield 'd["control"]' <<<"$line")
    log "OAuth provider up (pid $PROVIDER_PID): token $P_TOKEN, control $P_CONTROL"
}
provider() { # provider PATH JSON: POST to the control API
    curl -sS -f -o /dev/null --max-time 10 -X POST -H 'content-type: application/json' --data-binary "$2" "$P_CONTROL/$1" ||
        die "provider control POST /$1 failed"
}
provider_refreshes() { curl -sS --max-time 5 "$P_CONTROL/stats" | sed -n 's/.*"refresh":\([0-9]*\).*/\1/p'; }

# ---------------------------------------------------------------- seeding
# seed_one I: tenant bI, then a whole authorization-code flow for it (as a
# browser: the authorization URL without following the redirect, then the
# callback at Tessera). Prints nothing on success, one line on failure.
seed_one() {
    local i=$1 t="b$1" st body authz loc res
    st=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X POST -H "Authorization: Bearer $ROOT_TOKEN" \
        -H 'Content-Type: application/json' --data-binary "{\"id\":\"$t\",\"name\":\"$t\"}" "$SEED_URL/tenants") || st=curl
    [[ "$st" == 201 ]] || { echo "$t: POST /tenants answered $st"; return 0; }
    body=$(curl -sS --max-time 30 -H "Authorization: Bearer $ROOT_TOKEN" \
        "$SEED_URL/oauth/authorize/$KEY?tenant_id=$t&redirect_uri=$APP_REDIRECT_ENC") || body=""
    authz=$(sed -n 's/.*"authorizationUrl":"\([^"]*\)".*/\1/p' <<<"$body")
    [[ -n "$authz" ]] || { echo "$t: no authorizationUrl: ${body:0:200}"; return 0; }
    loc=$(curl -sS -o /dev/null -w '%{redirect_url}' --max-time 30 "$authz") || loc=""
    [[ "$loc" == *code=* ]] || { echo "$t: the provider did not redirect with a code: $loc"; return 0; }
    res=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 30 "$loc") || res=curl
    [[ "$res" == "302 $APP_REDIRECT?status=success"* ]] || { echo "$t: callback answered $res"; return 0; }
}

seed() {
    local db_url=$1
    launch_tessera seed "$db_url" 3600 # the worker's scan at start finds nothing; the next is an hour away
    wait_tessera seed
    SEED_URL=${T_URL[seed]}
    expect 201 POST "$SEED_URL/integrations" "{\"key\":\"$KEY\",\"name\":\"Bench CRM\",\"category\":\"crm\",\"authType\":\"oauth2\",\"template\":\"generic\",\"oauth\":{\"authorizeUrl\":\"$P_AUTHORIZE\",\"tokenUrl\":\"$P_TOKEN\",\"revokeUrl\":\"$P_REVOKE\",\"clientId\":\"$CLIENT_ID\",\"clientSecret\":\"$CLIENT_SECRET\",\"scopes\":[\"read\",\"write\"]}}"
    # Tokens issued now expire within TESSERA_REFRESH_BEFORE: all due.
    provider expires-in '{"seconds":120}'
    log "seeding $N OAuth connections (tenant + authorization-code flow each, $PARALLEL in parallel)"
    local t0 t1
    t0=$(now)
    export -f seed_one
    export SEED_URL ROOT_TOKEN KEY APP_REDIRECT APP_REDIRECT_ENC
    seq 1 "$N" | xargs -P "$PARALLEL" -I{} bash -c 'seed_one {}' >"$WORK/seed-failures.txt" 2>&1 || true
    t1=$(now)
    local failures
    failures=$(grep -c . "$WORK/seed-failures.txt" || true)
    ((failures == 0)) || die "$failures of $N flows failed, first: $(head -n 3 "$WORK/seed-failures.txt")"
    SEED_S=$(elapsed "$t0" "$t1")
    log "seeded $N connections in $SEED_S s ($(rate "$N" "$SEED_S") flows/s, each: 4 HTTP requests, one code exchange)"
    stop_tessera seed
    local have
    have=$(psql_db "$PG_DB" -c "SELECT count(*) FROM credentials WHERE integration_key = '$KEY' AND has_refresh_token = 1 AND needs_reauth = 0")
    ((have == N)) || die "$have refreshable credentials after seeding, wanted $N"
}

# ---------------------------------------------------------------- timed run
# timed_run REPLICAS ROUND: makes all N tokens due, starts the replicas with
# TESSERA_REFRESH_INTERVAL=1 and times until the provider has counted N refreshes.
timed_run() {
    local reps=$1 round=$2 db_url=$3 r
    psql_db "$PG_DB" -c "UPDATE credentials SET expires_at = 0, lease_owner = NULL, lease_until = NULL, next_attempt_at = NULL WHERE integration_key = '$KEY'" >/dev/null
    local due
    due=$(psql_db "$PG_DB" -c "SELECT count(*) FROM credentials WHERE has_refresh_token = 1 AND needs_reauth = 0 AND expires_at <= 0")
    ((due == N)) || fail "run $reps/$round: $due due tokens before the run, wanted $N"
    provider reset '{}'            # counters; issued tokens stay valid
    provider expires-in '{"seconds":3600}' # refreshed tokens are not due again
    ((PROVIDER_DELAY_MS > 0)) && provider delay "{\"ms\":$PROVIDER_DELAY_MS}"
    local m0 p0 g0 g1 t0 t_first="" t_done="" c=0 last=-1 last_change
    m0=$(machine_ticks)
    p0=$(cpu_ticks "$PROVIDER_PID")
    g0=$(pg_ticks)
    t0=$(now)
    for ((r = 1; r <= reps; r++)); do launch_tessera "replica$r" "$db_url" 1; done
    last_change=$t0
    while :; do
        c=$(provider_refreshes || echo "")
        [[ "$c" =~ ^[0-9]+$ ]] || c=0
        if ((c > 0)) && [[ -z "$t_first" ]]; then t_first=$(now); fi
        ((c >= N)) && { t_done=$(now); break; }
        if ((c != last)); then last=$c; last_change=$(now); fi
        local dead=""
        for ((r = 1; r <= reps; r++)); do kill -0 "${T_PID[replica$r]}" 2>/dev/null || dead+=" replica$r"; done
        [[ -z "$dead" ]] || { fail "run $reps/$round:$dead exited at $c/$N refreshes: $(tail -n 3 "$WORK/replica1/serve.err" | head -c 400)"; break; }
        if awk -v a="$last_change" -v b="$(now)" -v s="$STALL_TIMEOUT" 'BEGIN {exit !(b - a > s)}'; then
            fail "run $reps/$round: no refresh for $STALL_TIMEOUT s at $c/$N"; break
        fi
        if awk -v a="$t0" -v b="$(now)" -v s="$PHASE_TIMEOUT" 'BEGIN {exit !(b - a > s)}'; then
            fail "run $reps/$round: $c/$N refreshes after $PHASE_TIMEOUT s"; break
        fi
        sleep 0.1
    done
    local m1 p1
    m1=$(machine_ticks)
    p1=$(cpu_ticks "$PROVIDER_PID")
    g1=$(pg_ticks)
    # CPU of each replica (its whole life: start-up, scans, refreshes).
    local cpus=() tcpu=0 v
    for ((r = 1; r <= reps; r++)); do
        v=$(cpu_ticks "${T_PID[replica$r]}"); cpus+=("$v"); tcpu=$((tcpu + v))
    done
    # Let any late (double) refresh reach the provider before counting.
    sleep 3
    curl -sS --max-time 10 "$P_CONTROL/stats" >"$WORK/stats-$reps-$round.json"
    for ((r = 1; r <= reps; r++)); do stop_tessera "replica$r"; done
    local problems=0
    for ((r = 1; r <= reps; r++)); do problems=$((problems + $(log_problems "replica$r"))); : >"$WORK/replica$r/serve.err"; done

    local refreshed failed presented distinct
    refreshed=$(jfield 'd["refresh"]' <"$WORK/stats-$reps-$round.json")
    failed=$(jfield 'd["failedRefresh"]' <"$WORK/stats-$reps-$round.json")
    presented=$(jfield 'len(d["refreshTokensPresented"])' <"$WORK/stats-$reps-$round.json")
    distinct=$(jfield 'len(set(d["refreshTokensPresented"]))' <"$WORK/stats-$reps-$round.json")
    [[ "$refreshed" == "$N" && "$failed" == 0 && "$presented" == "$N" && "$distinct" == "$N" ]] ||
        fail "run $reps/$round: provider counted refresh=$refreshed failedRefresh=$failed presented=$presented distinct=$distinct, wanted $N/0/$N/$N (a double refresh presents a used token: failedRefresh > 0)"
    ((problems == 0)) || fail "run $reps/$round: $problems problem lines in the server logs"
    local stored
    stored=$(psql_db "$PG_DB" -c "SELECT count(*) FROM credentials WHERE integration_key = '$KEY' AND expires_at > $(($(date +%s) * 1000000)) AND lease_owner IS NULL AND refresh_failures = 0 AND needs_reauth = 0")
    ((stored == N)) || fail "run $reps/$round: $stored credentials refreshed and released in the database, wanted $N"

    local total first_to_last mach_busy prov_cpu tess_cpu pg_cpu
    total=$(elapsed "$t0" "${t_done:-$(now)}")
    first_to_last=$(elapsed "${t_first:-$t0}" "${t_done:-$(now)}")
    mach_busy=$(awk -v a="$m0" -v b="$m1" 'BEGIN {split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; printf "%.0f", (d > 0 ? (y[1] - x[1]) / d * 100 : 0)}')
    prov_cpu=$(awk -v t="$((p1 - p0))" -v hz="$CLK_TCK" -v s="$total" 'BEGIN {printf "%.0f", (s > 0 ? t / hz / s * 100 : 0)}')
    pg_cpu=$(awk -v t="$((g1 - g0))" -v hz="$CLK_TCK" -v s="$total" 'BEGIN {printf "%.0f", (s > 0 ? t / hz / s * 100 : 0)}')
    tess_cpu=$(awk -v t="$tcpu" -v hz="$CLK_TCK" -v s="$total" 'BEGIN {printf "%.0f", (s > 0 ? t / hz / s * 100 : 0)}')
    local split
    split=$(IFS=/; echo "${cpus[*]}")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$reps" "$round" "$total" "$first_to_last" \
        "$(rate "$N" "$total")" "$refreshed" "$failed" "$distinct" "$tess_cpu" "$prov_cpu" "$mach_busy" "$pg_cpu" >>"$WORK/runs.tsv"
    log "$(printf '%d replica(s) run %d: %d tokens in %6.2f s from start (%5.2f s first-to-last refresh) = %5s tokens/s; provider refresh=%s failed=%s distinct=%s; CPU %% of one core: tessera %s%% (ticks per replica %s), provider %s%%, PostgreSQL %s%%; machine busy %s%%' \
        "$reps" "$round" "$N" "$total" "$first_to_last" "$(rate "$N" "$total")" "$refreshed" "$failed" "$distinct" "$tess_cpu" "$split" "$prov_cpu" "$pg_cpu" "$mach_busy")"
}

bench_throughput() {
    PG_DB="tessera_bench_refresh_$(rand_hex 6)"
    createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$PG_DB" || die "createdb $PG_DB failed"
    PG_DBS+=("$PG_DB")
    local db_url="postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB"
    start_provider
    seed "$db_url"
    : >"$WORK/runs.tsv"
    local round reps
    # Alternate replica counts round by round, so drift in the machine's noise is spread evenly.
    for ((round = 1; round <= REPEATS; round++)); do
        for reps in $REPLICAS; do timed_run "$reps" "$round" "$db_url"; done
    done
}

# ---------------------------------------------------------------- scan cost
# The worker's statements, as crates/tessera-store/src/credentials.rs runs them
# (claim_due_credentials with LIMIT 100 = serve.rs's BATCH, count_due_credentials),
# with the bound values inlined: $1 = now, $2 = now + TESSERA_REFRESH_BEFORE
# (µs since the epoch), $3 owner, $4 lease_until = now + 60 s, $5 = 100.
claim_sql() { # claim_sql NOW_US SKIP_LOCKED
    local now=$1 due=$(($1 + REFRESH_BEFORE * 1000000)) lease=$(($1 + 60000000))
    echo "UPDATE credentials SET lease_owner = 'tessera-bench', lease_until = $lease \
WHERE (tenant_id, integration_key) IN (SELECT tenant_id, integration_key FROM credentials \
WHERE has_refresh_token = 1 AND needs_reauth = 0 \
AND (next_attempt_at IS NULL OR next_attempt_at <= $now) AND (lease_until IS NULL OR lease_until < $now) \
AND expires_at IS NOT NULL AND expires_at <= $due \
ORDER BY expires_at LIMIT 100$2) \
RETURNING tenant_id, integration_key"
}
count_sql() {
    echo "SELECT COUNT(*) FROM credentials WHERE has_refresh_token = 1 AND needs_reauth = 0 \
AND expires_at IS NOT NULL AND expires_at <= $(($1 + REFRESH_BEFORE * 1000000))"
}

# A fresh database with Tessera's schema: start a server once (it migrates), stop it.
migrated_store() { # migrated_store NAME DATABASE_URL
    launch_tessera "$1" "$2" 3600
    wait_tessera "$1"
    stop_tessera "$1"
}

# fill_sql NOW_US: SCAN_ROWS tenants, connections and credentials (PostgreSQL).
# Every DUE_EVERY-th row is due (expired a while ago), the others expire
# 1-31 days from now; all are refreshable (has_refresh_token = 1, needs_reauth = 0).
pg_fill_sql() {
    local now=$1
    cat <<EOF
INSERT INTO integrations (integration_key, name, category, auth_type, config_schema, defaults, defaults_meta, created_at, updated_at)
VALUES ('scan-crm', 'Scan CRM', 'crm', 'oauth2', '[]', '{}', '{}', $now, $now);
INSERT INTO tenants (id, name, status, created_at)
SELECT 's' || i, 's' || i, 'active', $now FROM generate_series(1, $SCAN_ROWS) AS i;
INSERT INTO connections (tenant_id, integration_key, config, config_meta, is_enabled, created_at, updated_at)
SELECT 's' || i, 'scan-crm', '{}', '{}', 1, $now, $now FROM generate_series(1, $SCAN_ROWS) AS i;
INSERT INTO credentials (tenant_id, integration_key, token_type, scopes, has_refresh_token, expires_at, source, created_at, updated_at)
SELECT 's' || i, 'scan-crm', 'Bearer', '["read"]', 1,
       CASE WHEN i % $DUE_EVERY = 0 THEN $now - i::bigint * 1000000 ELSE $now + 86400000000 + (i::bigint * 2592000000000 / $SCAN_ROWS) END,
       'oauth', $now, $now
FROM generate_series(1, $SCAN_ROWS) AS i;
VACUUM ANALYZE tenants;
VACUUM ANALYZE connections;
VACUUM ANALYZE credentials;
EOF
}
sqlite_fill_sql() {
    local now=$1
    cat <<EOF
PRAGMA foreign_keys = ON;
BEGIN;
INSERT INTO integrations (integration_key, name, category, auth_type, config_schema, defaults, defaults_meta, created_at, updated_at)
VALUES ('scan-crm', 'Scan CRM', 'crm', 'oauth2', '[]', '{}', '{}', $now, $now);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $SCAN_ROWS)
INSERT INTO tenants (id, name, status, created_at) SELECT 's' || i, 's' || i, 'active', $now FROM s;
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $SCAN_ROWS)
INSERT INTO connections (tenant_id, integration_key, config, config_meta, is_enabled, created_at, updated_at)
SELECT 's' || i, 'scan-crm', '{}', '{}', 1, $now, $now FROM s;
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $SCAN_ROWS)
INSERT INTO credentials (tenant_id, integration_key, token_type, scopes, has_refresh_token, expires_at, source, created_at, updated_at)
SELECT 's' || i, 'scan-crm', 'Bearer', '["read"]', 1,
       CASE WHEN i % $DUE_EVERY = 0 THEN $now - i * 1000000 ELSE $now + 86400000000 + (i * 2592000000000 / $SCAN_ROWS) END,
       'oauth', $now, $now
FROM s;
COMMIT;
ANALYZE;
EOF
}

# pg_explain DB LABEL SQL [PREPARE]: runs EXPLAIN (ANALYZE, BUFFERS) SCAN_REPEATS
# times inside BEGIN .. ROLLBACK; keeps the plans; prints the median execution ms.
pg_explain() {
    local db=$1 label=$2 sql=$3 mode=${4:-custom} i out times=""
    for ((i = 1; i <= SCAN_REPEATS; i++)); do
        out="$WORK/plan-pg-$label-$i.txt"
        if [[ "$mode" == generic ]]; then
            # The generic plan of the prepared statement, forced.
            psql_db "$db" >"$out" <<EOF
BEGIN;
SET LOCAL plan_cache_mode = force_generic_plan;
PREPARE q AS $sql;
EXPLAIN (ANALYZE, BUFFERS) EXECUTE q($GENERIC_ARGS);
ROLLBACK;
EOF
        elif [[ "$mode" == prepared ]]; then
            # What sqlx runs: a prepared statement, here on its 11th execution, when
            # plan_cache_mode = auto may have switched to the generic plan (it does so
            # after 5 executions if the generic plan is not estimated dearer).
            # The warm-up runs roll back, so the measured one sees the same rows.
            local warm="" k
            for ((k = 0; k < 10; k++)); do warm+="EXECUTE q($GENERIC_ARGS); "; done
            psql_db "$db" >"$out.all" <<EOF
PREPARE q AS $sql;
BEGIN;
$warm
ROLLBACK;
BEGIN;
EXPLAIN (ANALYZE, BUFFERS) EXECUTE q($GENERIC_ARGS);
ROLLBACK;
EOF
            # Keep only the plan (the warm-up runs print their returned rows).
            sed -n '/(cost=/,$p' "$out.all" >"$out"
        else
            psql_db "$db" >"$out" <<EOF
BEGIN;
EXPLAIN (ANALYZE, BUFFERS) $sql;
ROLLBACK;
EOF
        fi
        times+=" $(sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p' "$out")"
    done
    echo "$times" | median
}

bench_scan_pg() {
    local db="tessera_bench_refresh_$(rand_hex 6)_scan"
    createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$db" || die "createdb $db failed"
    PG_DBS+=("$db")
    migrated_store scan-pg "postgres://$PG_USER@$PG_HOST:$PG_PORT/$db"
    local now t0 t1
    now=$(($(date +%s) * 1000000))
    t0=$(now)
    pg_fill_sql "$now" | psql_db "$db" >/dev/null
    t1=$(now)
    local total due
    total=$(psql_db "$db" -c "SELECT count(*) FROM credentials")
    due=$(psql_db "$db" -c "$(count_sql "$now")")
    log "PostgreSQL: $total credentials, $due due, inserted in $(elapsed "$t0" "$t1") s (with VACUUM ANALYZE)"
    ((total == SCAN_ROWS)) || fail "scan pg: $total credentials, wanted $SCAN_ROWS"
    local claim_ms count_ms generic_ms generic_count_ms claim_plan count_plan generic_plan
    claim_ms=$(pg_explain "$db" claim "$(claim_sql "$now" " FOR UPDATE SKIP LOCKED")")
    claim_plan="$WORK/plan-pg-claim-1.txt"
    count_ms=$(pg_explain "$db" count "$(count_sql "$now")")
    count_plan="$WORK/plan-pg-count-1.txt"
    # The same statements with parameters, as a generic plan.
    local claim_param="UPDATE credentials SET lease_owner = \$3, lease_until = \$4 \
WHERE (tenant_id, integration_key) IN (SELECT tenant_id, integration_key FROM credentials \
WHERE has_refresh_token = 1 AND needs_reauth = 0 \
AND (next_attempt_at IS NULL OR next_attempt_at <= \$1) AND (lease_until IS NULL OR lease_until < \$1) \
AND expires_at IS NOT NULL AND expires_at <= \$2 ORDER BY expires_at LIMIT \$5 FOR UPDATE SKIP LOCKED) \
RETURNING tenant_id, integration_key"
    local count_param="SELECT COUNT(*) FROM credentials WHERE has_refresh_token = 1 \
AND needs_reauth = 0 AND expires_at IS NOT NULL AND expires_at <= \$1"
    GENERIC_ARGS="$now, $((now + REFRESH_BEFORE * 1000000)), 'tessera-bench', $((now + 60000000)), 100"
    prepared_ms=$(pg_explain "$db" claim-prepared "$claim_param" prepared)
    generic_ms=$(pg_explain "$db" claim-generic "$claim_param" generic)
    generic_plan="$WORK/plan-pg-claim-generic-1.txt"
    GENERIC_ARGS="$((now + REFRESH_BEFORE * 1000000))"
    prepared_count_ms=$(pg_explain "$db" count-prepared "$count_param" prepared)
    generic_count_ms=$(pg_explain "$db" count-generic "$count_param" generic)
    local generic_count_plan="$WORK/plan-pg-count-generic-1.txt" prepared_plan="$WORK/plan-pg-claim-prepared-1.txt"
    local claimed
    claimed=$(grep -o 'Update on credentials.*rows=[0-9]*' "$claim_plan" | grep -o 'rows=[0-9]*$' | tail -n1 || true)
    local label plan idx
    for label in claim count claim-prepared count-prepared claim-generic count-generic; do
        plan="$WORK/plan-pg-$label-1.txt"
        if grep -q 'credentials_due' "$plan"; then idx="uses credentials_due"; else idx="does NOT use credentials_due"; fi
        grep -q 'Seq Scan' "$plan" && idx+=", and a $(grep -o 'Seq Scan on [a-z_]*' "$plan" | head -n1) ($(grep -o 'Seq Scan on .*rows=[0-9]* loops' "$plan" | grep -o 'rows=[0-9]*' | tail -n1))"
        if grep -q 'Cond: .*\$[0-9]' "$plan"; then idx+=" [generic plan]"; else idx+=" [custom plan]"; fi
        case "$label" in
        # A Seq Scan of the outer UPDATE's target is reported, not failed: on small tables
        # the planner rightly prefers it to 100 primary-key probes.
        claim | count | *-prepared) [[ "$idx" == "uses credentials_due"* ]] || fail "scan pg $label: plan $idx" ;;
        esac
        printf 'postgres\t%s\t%s\n' "$label" "$idx" >>"$WORK/scan-index.tsv"
    done
    printf 'postgres\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$total" "$due" "$claim_ms" "$count_ms" "$prepared_ms" "$prepared_count_ms" "$generic_ms" "$generic_count_ms" >>"$WORK/scan.tsv"
    log "PostgreSQL claim (LIMIT 100): median $claim_ms ms (prepared, 11th run: $prepared_ms ms; forced generic plan: $generic_ms ms); count: median $count_ms ms (prepared $prepared_count_ms ms; generic $generic_count_ms ms); $claimed"
    {
        echo "---- PostgreSQL plan: claim_due_credentials (custom plan, first of $SCAN_REPEATS runs)"
        cat "$claim_plan"
        echo "---- PostgreSQL plan: count_due_credentials"
        cat "$count_plan"
        echo "---- PostgreSQL plan: claim_due_credentials, prepared statement, 11th execution (plan_cache_mode = auto)"
        cat "$prepared_plan"
        echo "---- PostgreSQL plan: claim_due_credentials, generic plan (plan_cache_mode = force_generic_plan)"
        cat "$generic_plan"
        echo "---- PostgreSQL plan: count_due_credentials, generic plan"
        cat "$generic_count_plan"
    } >>"$WORK/plans.txt"
}

# sqlite_time DB LABEL SQL: runs SQL SCAN_REPEATS times inside BEGIN .. ROLLBACK
# with the CLI's .timer; prints the median wall time in ms.
sqlite_time() {
    local db=$1 label=$2 sql=$3 i out times=""
    for ((i = 1; i <= SCAN_REPEATS; i++)); do
        out="$WORK/sqlite-$label-$i.txt"
        sqlite3 -batch "$db" >"$out" 2>&1 <<EOF
BEGIN;
.timer on
$sql;
.timer off
ROLLBACK;
EOF
        times+=" $(sed -n 's/^Run Time: real \([0-9.]*\) .*/\1/p' "$out" | awk '{printf "%.3f", $1 * 1000}')"
    done
    echo "$times" | median
}

bench_scan_sqlite() {
    if [[ "$HAVE_SQLITE3" != 1 ]]; then
        log "sqlite3 CLI not found: SQLite scan cost skipped"
        echo "sqlite: skipped (no sqlite3 CLI)" >>"$RESULTS"
        return 0
    fi
    local dir="$WORK/scan-sqlite" db
    db="$dir/data/tessera.db"
    migrated_store scan-sqlite "sqlite://$db?mode=rwc"
    local now t0 t1
    now=$(($(date +%s) * 1000000))
    t0=$(now)
    sqlite_fill_sql "$now" | sqlite3 -batch "$db" >/dev/null
    t1=$(now)
    local total due
    total=$(sqlite3 "$db" "SELECT count(*) FROM credentials")
    due=$(sqlite3 "$db" "$(count_sql "$now")")
    log "SQLite ($(sqlite3 --version | cut -d' ' -f1) CLI): $total credentials, $due due, inserted in $(elapsed "$t0" "$t1") s"
    ((total == SCAN_ROWS)) || fail "scan sqlite: $total credentials, wanted $SCAN_ROWS"
    local claim_ms count_ms
    claim_ms=$(sqlite_time "$db" claim "$(claim_sql "$now" "")")
    count_ms=$(sqlite_time "$db" count "$(count_sql "$now")")
    local claimed
    claimed=$(grep -c '|scan-crm$' "$WORK/sqlite-claim-1.txt" || true)
    ((claimed == 100)) || fail "scan sqlite: the claim returned $claimed rows, wanted 100"
    {
        echo "---- SQLite plan: claim_due_credentials (EXPLAIN QUERY PLAN)"
        sqlite3 "$db" "EXPLAIN QUERY PLAN $(claim_sql "$now" "")"
        echo "---- SQLite plan: count_due_credentials"
        sqlite3 "$db" "EXPLAIN QUERY PLAN $(count_sql "$now")"
    } >"$WORK/plan-sqlite.txt"
    cat "$WORK/plan-sqlite.txt" >>"$WORK/plans.txt"
    local n
    n=$(grep -c 'USING INDEX credentials_due' "$WORK/plan-sqlite.txt" || true)
    if ((n >= 2)); then
        printf 'sqlite\tclaim+count\tuses credentials_due\n' >>"$WORK/scan-index.tsv"
    else
        printf 'sqlite\tclaim+count\tcredentials_due in %s of 2 plans\n' "$n" >>"$WORK/scan-index.tsv"
        fail "scan sqlite: credentials_due used in $n of 2 plans"
    fi
    printf 'sqlite\t%s\t%s\t%s\t%s\t-\t-\t-\t-\n' "$total" "$due" "$claim_ms" "$count_ms" >>"$WORK/scan.tsv"
    log "SQLite claim (LIMIT 100, returned $claimed rows): median $claim_ms ms; count: median $count_ms ms"
}

bench_scan() {
    DUE_EVERY=$((100 / DUE_PCT))
    ((DUE_EVERY * DUE_PCT == 100)) || die "DUE_PCT must divide 100"
    : >"$WORK/scan.tsv"
    : >"$WORK/scan-index.tsv"
    local d
    for d in $SCAN_DATABASES; do
        case "$d" in
        postgres) bench_scan_pg ;;
        sqlite) bench_scan_sqlite ;;
        *) die "unknown scan database $d" ;;
        esac
    done
}

# ---------------------------------------------------------------- main
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(now)
log "tessera: $TESSERA_BIN; N=$N REPEATS=$REPEATS REPLICAS='$REPLICAS' PROVIDER_DELAY_MS=$PROVIDER_DELAY_MS SCAN_ROWS=$SCAN_ROWS DUE_PCT=$DUE_PCT; $(nproc) cores (noisy); load $LOAD_BEFORE"
: >"$WORK/plans.txt"
for part in $PARTS; do
    case "$part" in
    throughput) bench_throughput ;;
    scan) bench_scan ;;
    *) die "unknown part $part" ;;
    esac
done

REPORT="$WORK/report.txt"
python3 - "$WORK" "$N" "$REPEATS" "$SCAN_ROWS" "$DUE_PCT" "$SCAN_REPEATS" "${SEED_S:-}" >"$REPORT" <<EOF
import csv, os, statistics, sys
work, n, repeats, scan_rows, due_pct, scan_repeats, seed_s = sys.argv[1:8]
med = statistics.median
print()
print("Tessera token refresh worker -- $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) noisy cores (shared with the provider, PostgreSQL and anything else running)")
print("load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg); total run $(elapsed "$STARTED" "$(now)") s")
runs = os.path.join(work, "runs.tsv")
if os.path.exists(runs) and os.path.getsize(runs):
    rows = [r for r in csv.reader(open(runs), delimiter="\t") if r]
    print()
    print(f"Throughput: N={n} due tokens per run, {repeats} run(s) per replica count, PostgreSQL, local oauth2-mock-server provider (node)"
          + ("; provider delay $PROVIDER_DELAY_MS ms per refresh" if "$PROVIDER_DELAY_MS" != "0" else "")
          + (f"; seeding {n} flows took {seed_s} s" if seed_s else ""))
    print(f"{'replicas':>8} {'tokens/s median':>15} {'s median':>9} {'first-to-last s':>15} {'tessera CPU':>11} {'provider CPU':>12} {'PG CPU':>6} {'busy':>5} {'refresh==N, 0 refused':>22}   tokens/s per run")
    base = None
    for reps in sorted({r[0] for r in rows}, key=int):
        rr = [r for r in rows if r[0] == reps]
        rates = [float(r[4]) for r in rr]
        ok = all(int(r[5]) == int(n) and int(r[6]) == 0 and int(r[7]) == int(n) for r in rr)
        m = med(rates)
        base = base or m
        print(f"{reps:>8} {m:>15.0f} {med(float(r[2]) for r in rr):>9.2f} {med(float(r[3]) for r in rr):>15.2f} "
              f"{med(float(r[8]) for r in rr):>10.0f}% {med(float(r[9]) for r in rr):>11.0f}% {med(float(r[11]) for r in rr):>5.0f}% {med(float(r[10]) for r in rr):>4.0f}% "
              f"{('yes' if ok else 'NO'):>22}   " + " ".join(f"{x:.0f}" for x in rates)
              + (f"   (x{m / base:.2f} vs 1 replica)" if reps != "1" else ""))
    print("(tokens/s = N / seconds from starting the replica(s) to the provider counting N refreshes, polled every 0.1 s;")
    print(" CPU in % of one core over that time (PG: all postgres processes; busy: whole machine, % of all cores); refresh==N: provider's successful refresh grants == N, failedRefresh == 0, N distinct refresh tokens)")
scan = os.path.join(work, "scan.tsv")
if os.path.exists(scan) and os.path.getsize(scan):
    print()
    print(f"Scan cost: {scan_rows} refreshable credentials, {due_pct}% due; median of {scan_repeats} runs inside BEGIN .. ROLLBACK")
    print(f"{'database':<9} {'rows':>7} {'due':>5} {'claim LIMIT 100 ms':>18} {'count due ms':>12} {'claim prepared':>14} {'count prepared':>14} {'claim generic':>13} {'count generic':>13}")
    for r in csv.reader(open(scan), delimiter="\t"):
        if r:
            print(f"{r[0]:<9} {r[1]:>7} {r[2]:>5} {r[3]:>18} {r[4]:>12} {r[5]:>14} {r[6]:>14} {r[7]:>13} {r[8]:>13}")
    print("(PostgreSQL: EXPLAIN (ANALYZE, BUFFERS) 'Execution Time', values inlined; prepared = a prepared statement's 11th")
    print(" execution with plan_cache_mode = auto, as sqlx runs it; generic = its generic plan, forced;")
    print(" SQLite: sqlite3 CLI .timer wall time, includes printing the 100 returned rows)")
    for r in csv.reader(open(os.path.join(work, "scan-index.tsv")), delimiter="\t"):
        if r:
            print(f"index: {r[0]} {r[1]}: {r[2]}")
print()
for line in open(os.path.join(work, "results.txt")):
    print(line.rstrip())
EOF
if [[ "$FAILED" == 0 ]]; then echo "RESULT: OK" >>"$REPORT"; else echo "RESULT: FAILED (see CHECK FAILED lines)" >>"$REPORT"; fi
if [[ -s "$WORK/plans.txt" ]]; then
    {
        echo
        echo "Query plans:"
        cat "$WORK/plans.txt"
    } >>"$REPORT"
fi
cat "$REPORT"
[[ -n "$RESULTS_OUT" ]] && cp "$REPORT" "$RESULTS_OUT"
[[ "$FAILED" == 0 ]] || exit 1
