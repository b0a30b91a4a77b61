#!/usr/bin/env bash
# Fuzzes the served OpenAPI document against a running server with every schemathesis check
# (`--checks all`). The few requests refused (or accepted) by design are listed, each with its
# reason, in schemathesis.toml at the repository root. One check is left out:
# ensure_resource_availability, which calls the 404 of log.csv for a JSON push a missing
# resource (see schemathesis.toml). One worker: with two, Python 3.11 parsing source in both
# threads at once now and then failed the run with "AST constructor recursion depth mismatch",
# an error inside the tool, not an answer of the service.
source "$(dirname "$0")/ci-lib.sh"

python_venv schemathesis==4.32.5
start_server 18171
cd "$REPO"
bounded 300 "$VENV/bin/schemathesis" --no-color --config-file "$REPO/schemathesis.toml" run "$BASE_URL/api-docs/openapi.json" \
    --header "Authorization: Bearer $TOKEN" \
    --checks all \
    --exclude-checks ensure_resource_availability \
    --max-examples 100 \
    --workers 1 \
    --seed 1
check_server_log
