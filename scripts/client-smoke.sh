#!/usr/bin/env bash
# Generates a Python client from the checked-in openapi/openapi.json with openapi-python-client
# and runs a real session through it (scripts/client_smoke.py).
source "$(dirname "$0")/ci-lib.sh"

python_venv openapi-python-client==0.29.1 httpx attrs python-dateutil
# The generator knows files only as application/octet-stream: the document's CSV (the upload
# body and the downloads), ZIP and XLSX media types are read as that (the generated functions
# take and return the raw bytes).
cat >"$WORKDIR/generator.yaml" <<'YAML'
post_hooks: []
content_type_overrides:
  text/csv: application/octet-stream
  application/zip: application/octet-stream
  application/vnd.openxmlformats-officedocument.spreadsheetml.sheet: application/octet-stream
YAML
bounded 120 "$VENV/bin/openapi-python-client" generate --path "$REPO/openapi/openapi.json" \
    --output-path "$WORKDIR/client/hris_sync_client" --meta none --config "$WORKDIR/generator.yaml" \
    --fail-on-warning
start_server 18161
PYTHONPATH="$WORKDIR/client" bounded 120 "$VENV/bin/python" "$REPO/scripts/client_smoke.py" "$BASE_URL" "$TOKEN"
check_server_log
