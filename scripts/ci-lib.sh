# Shared by the contract scripts: a server of the debug binary on a fresh SQLite file.
# Source it, then `start_server PORT`: sets BASE_URL, TOKEN and SERVER_PID, and stops the
# server on exit. Logs go to $WORKDIR/server.{stdout,stderr}.

set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORKDIR=$(mktemp -d)
BINARY=${HRIS_SYNC_BINARY:-$REPO/target/debug/hris-sync}

# Runs a command with a time limit, saying which step ran out of time.
bounded() {
    local seconds=$1
    shift
    if ! timeout "$seconds" "$@"; then
        echo "failed or timed out after ${seconds}s: $*" >&2
        return 1
    fi
}

ensure_binary() {
    if [ ! -x "$BINARY" ]; then
        (cd "$REPO" && cargo build --locked --bin hris-sync)
    fi
}

stop_server() {
    if [ -n "${SERVER_PID:-}" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

start_server() {
    local port=$1
    ensure_binary
    "$BINARY" serve --bind "127.0.0.1:$port" --database-url "sqlite://$WORKDIR/server.db" \
        >"$WORKDIR/server.stdout" 2>"$WORKDIR/server.stderr" &
    SERVER_PID=$!
    trap stop_server EXIT
    trap 'stop_server; exit 1' INT TERM
    BASE_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        curl -fsS "$BASE_URL/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    TOKEN=$(grep -o 'hsk_[0-9a-f]*' "$WORKDIR/server.stdout" | head -n 1 || true)
    if [ -z "$TOKEN" ]; then
        echo "the server printed no admin token" >&2
        cat "$WORKDIR/server.stdout" "$WORKDIR/server.stderr" >&2
        exit 1
    fi
}

# Fails when the server logged a panic.
check_server_log() {
    if grep -q "panicked" "$WORKDIR/server.stderr"; then
        echo "the server panicked:" >&2
        grep -A5 panicked "$WORKDIR/server.stderr" >&2
        exit 1
    fi
}

# A Python virtual environment with the given packages, in /tmp (reused when already there).
python_venv() {
    local venv=/tmp/hris-sync-ci-venv
    if ! python3 -m venv --help >/dev/null 2>&1; then
        apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    bounded 300 "$venv/bin/pip" install -q "$@"
    VENV=$venv
}
