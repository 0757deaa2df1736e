#!/usr/bin/env bash
# Regenerates the clients' types from Tessera's OpenAPI document, so that no
# type the document describes is written by hand:
#   clients/python/src/tessera_client/_models.py   (datamodel-code-generator, TypedDicts)
#   clients/typescript/src/generated/openapi.ts    (openapi-typescript)
# Usage: clients/generate.sh [URL or file] [out dir]
#   (defaults: http://127.0.0.1:7300/openapi.json, and the clients themselves;
#   then rebuild the TypeScript client's dist/ with `npm run build` in clients/typescript).
# The tools are the pinned ones scripts/services.sh installs: .tools/venv and
# clients/typescript/node_modules. tests/api/clients.rs runs this on the
# running server's document and checks the output equals the files checked in.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source="${1:-http://127.0.0.1:7300/openapi.json}"
out="${2:-$root/clients}"
python="${TESSERA_CLIENT_PYTHON:-$root/.tools/venv/bin/python}"
openapi_typescript="$root/clients/typescript/node_modules/.bin/openapi-typescript"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -f "$source" ]; then
    cp "$source" "$work/original.json"
else
    curl -fsS "$source" -o "$work/original.json"
fi

# One change to the document first: two enums written inline get a name, so
# both languages have a type to match against: ErrorDetail.code becomes the
# schema ErrorCode, and NewWebhook.events' items WebhookEventName.
mkdir -p "$work/doc"
"$python" - "$work/original.json" "$work/doc/openapi.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
schemas = doc["components"]["schemas"]
schemas["ErrorCode"] = schemas["ErrorDetail"]["properties"]["code"]
schemas["ErrorDetail"]["properties"]["code"] = {"$ref": "#/components/schemas/ErrorCode"}
schemas["WebhookEventName"] = schemas["NewWebhook"]["properties"]["events"]["items"]
schemas["NewWebhook"]["properties"]["events"]["items"] = {"$ref": "#/components/schemas/WebhookEventName"}
json.dump(doc, open(sys.argv[2], "w"), indent=2, sort_keys=True)
PY

mkdir -p "$out/python/src/tessera_client" "$out/typescript/src/generated"
(cd "$work/doc" && "$python" -m datamodel_code_generator \
    --input openapi.json --input-file-type openapi \
    --output "$out/python/src/tessera_client/_models.py" \
    --output-model-type typing.TypedDict --no-use-closed-typed-dict \
    --enum-field-as-literal all --target-python-version 3.11 \
    --use-standard-collections --use-union-operator --use-double-quotes \
    --use-schema-description --use-field-description \
    --formatters builtin --disable-timestamp \
    --custom-file-header "# Generated from Tessera's /openapi.json by clients/generate.sh (datamodel-code-generator). Do not edit.")
(cd "$work/doc" && "$openapi_typescript" openapi.json -o "$out/typescript/src/generated/openapi.ts" >/dev/null)
