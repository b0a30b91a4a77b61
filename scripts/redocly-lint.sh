#!/usr/bin/env bash
# Lints the checked-in openapi/openapi.json with Redocly CLI's recommended ruleset: any error
# fails (warnings are printed).
source "$(dirname "$0")/ci-lib.sh"

tools=/tmp/hris-sync-ci-redocly
[ -x "$tools/node_modules/.bin/redocly" ] ||
    bounded 240 npm install --silent --no-audit --no-fund --prefix "$tools" @redocly/cli@2.77.0
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true bounded 120 \
    "$tools/node_modules/.bin/redocly" lint --extends=recommended --format=stylish "$REPO/openapi/openapi.json"
