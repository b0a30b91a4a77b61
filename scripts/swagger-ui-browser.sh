#!/usr/bin/env bash
# Drives Swagger UI in headless Chromium (Debian's package) over the DevTools protocol: every
# operation, "Try it out" → Execute with the example values (scripts/swagger_ui_browser.py).
source "$(dirname "$0")/ci-lib.sh"

if [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    bounded 120 apt-get update -qq
    bounded 300 apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
python_venv websocket-client==1.9.2
start_server 18181
bounded 180 "$VENV/bin/python" "$REPO/scripts/swagger_ui_browser.py" "$BASE_URL" "$TOKEN"
check_server_log
