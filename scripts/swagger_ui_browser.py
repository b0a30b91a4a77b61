"""Swagger UI, driven in headless Chromium over the DevTools protocol.

Usage: swagger_ui_browser.py BASE_URL TOKEN   (Chromium at $CHROMIUM, default /usr/bin/chromium)

Seeds a finished run, a user and an invitation over HTTP, opens /swagger-ui/, authorizes with
TOKEN through the Authorize dialog, then for every operation of the document: expands it, clicks
"Try it out", keeps the example values (filling the path ids, and the run ids of the ZIP export,
with the seeded ones, which no example can know), clicks Execute, and
checks from the browser's own network log that the request went to that operation's method and
path and got one of the statuses the operation documents. Needs no network beyond loopback.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

TIMEOUT_SECONDS = 20
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-allow-origins=*",
    "--window-size=1280,2000",
]


MUST_SUCCEED = {
    "getHealth", "getReadiness", "getMetrics", "listErrorCodes", "getErrorCode", "pushSync",
    "listSyncRuns", "getSyncRun", "listSyncEvents", "retrySyncRun", "listUsers", "getUser",
    "updateUser", "inviteUser", "revokeInvitation", "getProvisioningSettings",
    "replaceProvisioningSettings", "listProvisioningSettingsHistory", "getSyncLogCsv",
    "getSyncLogXlsx", "exportSyncRuns", "getSyncRunReportCsv", "getSyncRunLogJson",
}


def fail(message):
    print(f"swagger ui: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


class Browser:
    """A Chromium process and one page, spoken to over the DevTools protocol."""

    def __init__(self, executable, port):
        self.profile = tempfile.mkdtemp(prefix="hris-sync-chromium-")
        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as answer:
                    pages = [t for t in json.load(answer) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                fail("Chromium did not start")
            time.sleep(0.2)
        self.socket = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=TIMEOUT_SECONDS)
        self.next_id = 0
        self.events = []

    def send(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    fail(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            fail(f"script failed: {result['exceptionDetails']}\n{expression}")
        return result["result"].get("value")

    def click(self, element, what):
        """A real mouse click in the middle of the element that `element` (JS) evaluates to."""
        point = self.wait_for(
            f"(() => {{ const e = {element}; if (!e) return null; e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()",
            what,
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=point[0], y=point[1], button="left", clickCount=1)

    def type_into(self, element, text, what):
        """Clicks into an input, selects what it holds and types `text` over it."""
        self.click(element, what)
        self.evaluate(f"{element}.select()")
        self.send("Input.insertText", text=text)

    def wait_for(self, expression, what):
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        fail(f"timed out waiting for {what}")

    def drain(self):
        """Collects the events that arrived since the last call."""
        self.socket.settimeout(0.05)
        try:
            while True:
                message = json.loads(self.socket.recv())
                if "method" in message:
                    self.events.append(message)
        except (websocket.WebSocketTimeoutException, TimeoutError):
            pass
        finally:
            self.socket.settimeout(TIMEOUT_SECONDS)
        events, self.events = self.events, []
        return events

    def close(self):
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


def authorize(browser, token):
    browser.click("document.querySelector('.btn.authorize')", "the Authorize button")
    browser.wait_for("!!document.querySelector('.modal-ux input')", "the Authorize dialog")
    browser.type_into("document.querySelector('.modal-ux input')", token, "the token input")
    browser.click("document.querySelector('.modal-ux .auth-btn-wrapper .authorize')", "the dialog's Authorize button")
    browser.wait_for("!!document.querySelector('.modal-ux .auth-btn-wrapper .btn-done, .modal-ux .auth-btn-wrapper .logout')", "the authorization")
    browser.click("document.querySelector('.modal-ux .close-modal')", "the dialog's close button")
    browser.wait_for("!document.querySelector('.modal-ux')", "the dialog to close")


def path_matches(template, path):
    pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
    return re.match(pattern, path) is not None


def try_operation(browser, base_url, method, path, operation, ids):
    operation_id = operation["operationId"]
    tag = operation["tags"][0]
    block = f"document.getElementById('operations-{tag}-{operation_id}')"
    if not browser.evaluate(f"!!{block}"):
        fail(f"{operation_id}: no block operations-{tag}-{operation_id} on the page")
    browser.click(f"{block}.querySelector('.opblock-summary-control')", f"{operation_id}'s summary")
    browser.wait_for(f"!!{block}.querySelector('.try-out__btn')", f"{operation_id} to expand")
    opened = browser.evaluate(
        "Array.from(document.querySelectorAll('.opblock.is-open')).map(b => b.id)"
    )
    if opened != [f"operations-{tag}-{operation_id}"]:
        fail(f"expanding {operation_id} opened {opened}")
    browser.click(f"{block}.querySelector('.try-out__btn')", f"{operation_id}'s Try it out")
    browser.wait_for(f"!!{block}.querySelector('.btn.execute')", f"{operation_id}'s Execute button")
    fills = {}
    for parameter in operation.get("parameters", []):
        # The runs of a ZIP export: the seeded run, which no example can know.
        if operation_id == "exportSyncRuns" and parameter["name"] == "ids":
            fills["ids"] = ids["run"]
        if parameter["in"] != "path":
            continue
        real = {"getUser": ids["user"], "updateUser": ids["user"], "revokeInvitation": ids["invited"]}.get(operation_id)
        if parameter["name"] == "id":
            fills["id"] = real or ids["run"]
    for name, value in fills.items():
        browser.type_into(f"{block}.querySelector('tr[data-param-name=\"{name}\"] input')", value, f"{operation_id}'s {name}")
    browser.drain()
    browser.click(f"{block}.querySelector('.btn.execute')", f"{operation_id}'s Execute")
    status_text = browser.wait_for(
        f"(() => {{ const s = {block}.querySelector('.live-responses-table tbody .response-col_status'); return s && s.textContent.trim(); }})()",
        f"{operation_id}'s response",
    )
    requests = {}
    bodies = {}
    statuses = {}
    for event in browser.drain():
        if event["method"] == "Network.requestWillBeSent":
            request = event["params"]["request"]
            if request["url"].startswith(base_url) and "/swagger-ui/" not in request["url"] and "/api-docs/" not in request["url"]:
                requests[event["params"]["requestId"]] = (request["method"], request["url"])
                bodies[event["params"]["requestId"]] = request.get("postData")
        elif event["method"] == "Network.responseReceived":
            statuses[event["params"]["requestId"]] = event["params"]["response"]["status"]
    sent = [(requests[r][0], requests[r][1], statuses.get(r)) for r in requests]
    if len(sent) != 1:
        fail(f"{operation_id}: expected one request, the browser sent {sent}")
    sent_method, url, status = sent[0]
    # The push Swagger UI offers is the document's example: a safe dry run.
    if operation_id == "pushSync":
        body = json.loads(next(iter(bodies.values())) or "{}")
        if body.get("dry_run") is not True or body.get("mode") != "incremental":
            fail(f"pushSync sent {body}, not the incremental dry run of the example")
    sent_path = url[len(base_url):].split("?", 1)[0]
    if sent_method != method.upper() or not path_matches(path, sent_path):
        fail(f"{operation_id}: {method.upper()} {path} sent {sent_method} {sent_path}")
    if str(status) not in operation["responses"]:
        fail(f"{operation_id}: status {status} is not documented ({sorted(operation['responses'])})")
    # The token the dialog took is sent, and nothing breaks the server.
    if status in (401, 403) or status >= 500:
        fail(f"{operation_id}: the example values got {status}")
    # The examples of these operations work as they are (others may meet a state, e.g. a run
    # that awaits no approval, and answer a documented 4xx).
    if operation_id in MUST_SUCCEED and not 200 <= status < 300:
        fail(f"{operation_id}: the example values got {status}")
    if not status_text.startswith(str(status)):
        fail(f"{operation_id}: the page shows {status_text!r}, the network {status}")
    # Close the block again, so that the next check sees only its own.
    browser.click(f"{block}.querySelector('.opblock-summary-control')", f"{operation_id}'s summary")
    browser.wait_for(f"!{block}.classList.contains('is-open')", f"{operation_id} to close")
    print(f"  {operation_id}: {sent_method} {sent_path} -> {status}")
    return status


def http(base_url, token, method, path, body=None):
    request = urllib.request.Request(
        f"{base_url}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def seed(base_url, token):
    """A finished run, a user and an invited user, whose ids the path parameters need."""
    people = [
        {"external_id": "S1", "email": "seed.one@example.com", "first_name": "Seed", "last_name": "One", "start_date": "2024-03-01"},
        {"external_id": "S2", "email": "seed.two@example.com", "first_name": "Seed", "last_name": "Two", "start_date": "2024-03-01", "manager_external_id": "S1"},
    ]
    run = http(base_url, token, "POST", "/v1/syncs", {"source": "seed", "users": people})
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while http(base_url, token, "GET", f"/v1/syncs/{run['id']}")["finished_at"] is None:
        if time.monotonic() > deadline:
            fail("the seed run did not finish")
        time.sleep(0.1)
    user = http(base_url, token, "GET", "/v1/users?limit=1")["items"][0]
    invited = http(
        base_url, token, "POST", "/v1/users/invitations",
        {"email": "seed.invited@example.com", "first_name": "Seed", "last_name": "Invited"},
    )
    return {"run": run["id"], "user": user["id"], "invited": invited["id"]}


def main(base_url, token):
    ids = seed(base_url, token)
    spec = json.load(urllib.request.urlopen(f"{base_url}/api-docs/openapi.json", timeout=10))
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    browser = Browser(executable, int(os.environ.get("CHROMIUM_DEBUG_PORT", "9333")))
    try:
        browser.send("Network.enable")
        browser.send("Page.enable")
        browser.send("Page.navigate", url=f"{base_url}/swagger-ui/")
        browser.wait_for("document.querySelectorAll('.opblock').length > 0", "Swagger UI to render the operations")
        authorize(browser, token)
        # Retry and revoke last: they change what the other operations read.
        operations = [
            (method, path, operation)
            for path, item in spec["paths"].items()
            for method, operation in item.items()
        ]
        late = {"retrySyncRun": 1, "revokeInvitation": 2}
        operations.sort(key=lambda o: late.get(o[2]["operationId"], 0))
        for method, path, operation in operations:
            try_operation(browser, base_url, method, path, operation, ids)
    finally:
        browser.close()
    print(f"swagger ui: ok, every one of the {len(operations)} operations executed from the browser")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: swagger_ui_browser.py BASE_URL TOKEN")
    main(*sys.argv[1:])
