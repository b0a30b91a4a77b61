"""A real session through a client generated from openapi/openapi.json, and nothing else.

Usage: client_smoke.py BASE_URL TOKEN   (the generated package `hris_sync_client` on sys.path)

Pushes a batch, polls the run, pushes changes, lists runs, reads every page of a run's report
(with updates and issues), lists users, reads an error code, downloads the exports (report.csv,
log.json, the period sync log as CSV and XLSX, a ZIP of runs), replaces the provisioning
settings (approval mode `always`, with If-Match; a stale ETag gets 412) and approves one run
and rejects another, and calls every other operation once. Fails on any parse error, on any answer that is not the documented model, and on any
field the server sent that the document does not declare (generated models keep those in
`additional_properties`).
"""

import csv
import importlib
import io
import json
import pkgutil
import re
import sys
import time
import urllib.request

from hris_sync_client import AuthenticatedClient
from hris_sync_client import api as api_package
from hris_sync_client.api.error_codes import get_error_code, list_error_codes
from hris_sync_client.api.operations import get_health, get_metrics, get_readiness
from hris_sync_client.api.settings import (
    get_provisioning_settings,
    list_provisioning_settings_history,
    replace_provisioning_settings,
)
from hris_sync_client.api.syncs import (
    approve_sync_run,
    export_sync_runs,
    get_sync_log_csv,
    get_sync_log_xlsx,
    get_sync_run,
    get_sync_run_log_json,
    get_sync_run_report_csv,
    list_sync_events,
    list_sync_runs,
    push_sync,
    reject_sync_run,
    retry_sync_run,
)
from hris_sync_client.api.users import (
    get_user,
    invite_user,
    list_users,
    revoke_invitation,
    update_user,
)
from hris_sync_client.models import (
    ApprovalMode,
    DecisionBody,
    ErrorCode,
    ErrorCodePage,
    EventKind,
    EventPage,
    Invitation,
    IssueCode,
    Problem,
    ProvisioningSettings,
    PushBody,
    RunLog,
    RunPage,
    RunStatus,
    RunView,
    SettingsVersionPage,
    SyncMode,
    UserPage,
    UserPatch,
    UserRecord,
    UserView,
)
from hris_sync_client.types import UNSET, File

DEADLINE_SECONDS = 60


def snake_case(operation_id):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def fail(message):
    print(f"client smoke: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def undeclared(value, at="answer"):
    """Every field the server sent that the model does not declare, recursively."""
    found = []
    extra = getattr(value, "additional_properties", None)
    if isinstance(extra, dict) and not type(value).__name__.endswith(("CustomFields", "CustomFieldsType0")):
        found += [f"{at}.{key}" for key in extra]
    if hasattr(value, "__attrs_attrs__"):
        for attribute in value.__attrs_attrs__:
            if attribute.name != "additional_properties":
                found += undeclared(getattr(value, attribute.name), f"{at}.{attribute.name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += undeclared(item, f"{at}[{index}]")
    return found


def call(operation, expected_type, *args, **kwargs):
    """Calls a generated operation; its parsed answer, which must be of `expected_type`."""
    return call_detailed(operation, expected_type, *args, **kwargs).parsed


def call_detailed(operation, expected_type, *args, **kwargs):
    """Calls a generated operation; the whole response, whose parsed answer must be of
    `expected_type` (headers and status included, for downloads and ETags)."""
    response = operation.sync_detailed(*args, **kwargs)
    parsed = response.parsed
    name = operation.__name__.rsplit(".", 1)[-1]
    if not isinstance(parsed, expected_type):
        fail(f"{name}: {response.status_code} parsed as {type(parsed).__name__}: {response.content[:300]!r}")
    extra = undeclared(parsed, name)
    if extra:
        fail(f"{name}: the server sent fields the document does not declare: {extra}")
    CALLED.add(name)
    return response


def every_page(operation, expected_type, *args, **kwargs):
    """Every item of a list, following `next_cursor`."""
    items, cursor, pages = [], UNSET, 0
    while True:
        page = call(operation, expected_type, *args, cursor=cursor, **kwargs)
        items += page.items
        pages += 1
        if page.next_cursor is None:
            return items, pages
        cursor = page.next_cursor


def wait_for(client, run_id):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        run = call(get_sync_run, RunView, run_id, client=client)
        if run.finished_at is not None:
            return run
        if time.monotonic() > deadline:
            fail(f"run {run_id} did not finish: {run.status}")
        time.sleep(0.1)


def wait_for_status(client, run_id, statuses):
    """Polls a run until its status is one of `statuses`."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        run = call(get_sync_run, RunView, run_id, client=client)
        if run.status in statuses:
            return run
        if time.monotonic() > deadline:
            fail(f"run {run_id} did not reach {statuses}: {run.status}")
        time.sleep(0.1)


def attachment(response, suffix):
    """Checks that a download is an attachment named `*suffix`; its bytes."""
    disposition = response.headers.get("content-disposition", "")
    if not (disposition.startswith("attachment;") and disposition.rstrip('"').endswith(suffix)):
        fail(f"a download of *{suffix} has Content-Disposition {disposition!r}")
    return response.content


def downloads(client, first, second):
    """report.csv, log.json, the period sync log (CSV, XLSX) and a ZIP, through the client."""
    run_id = str(first.id)
    events, _ = every_page(list_sync_events, EventPage, first.id, client=client, limit=1000)
    response = call_detailed(get_sync_run_report_csv, bytes, first.id, client=client)
    report = attachment(response, f"sync-{first.id}-report.csv").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(report.lstrip("\ufeff"))))
    if not rows or {row["run_id"] for row in rows} != {run_id}:
        fail(f"report.csv of {first.id}: {len(rows)} rows, run ids {sorted({r['run_id'] for r in rows})}")
    if {int(row["seq"]) for row in rows} != {event.seq for event in events}:
        fail(f"report.csv of {first.id} does not hold the run's {len(events)} events")
    response = call_detailed(get_sync_run_log_json, RunLog, first.id, client=client)
    attachment(response, f"sync-{first.id}-log.json")
    log = response.parsed
    if str(log.run_id) != run_id or log.number_of_created_users != first.counts.created:
        fail(f"log.json of {first.id}: {log.run_id}, {log.number_of_created_users} created, the run {first.counts.created}")
    sync_log = call_detailed(get_sync_log_csv, bytes, client=client)
    if not attachment(sync_log, ".csv").decode("utf-8").lstrip("\ufeff").startswith("section,time,run_id"):
        fail("getSyncLogCsv: not the sync log's columns")
    workbook = call_detailed(get_sync_log_xlsx, File, client=client)
    if not attachment(workbook, ".xlsx").startswith(b"PK"):
        fail("getSyncLogXlsx: not an XLSX (ZIP) file")
    archive = call_detailed(export_sync_runs, File, client=client, ids=f"{first.id},{second.id}")
    if not attachment(archive, ".zip").startswith(b"PK"):
        fail("exportSyncRuns: not a ZIP file")


def approvals(client, people):
    """Settings with approval mode `always` (If-Match), a stale write refused, the history; one
    run approved and one rejected through the client."""
    response = call_detailed(get_provisioning_settings, ProvisioningSettings, client=client)
    settings, etag = response.parsed, response.headers["etag"]
    settings.approval.mode = ApprovalMode.ALWAYS
    response = call_detailed(
        replace_provisioning_settings, ProvisioningSettings, client=client, body=settings, if_match=etag
    )
    if response.parsed.approval.mode != ApprovalMode.ALWAYS or response.headers["etag"] == etag:
        fail(f"replaceProvisioningSettings: {response.parsed.approval.mode}, ETag {response.headers['etag']}")
    stale = replace_provisioning_settings.sync_detailed(client=client, body=settings, if_match=etag)
    if stale.status_code != 412 or not isinstance(stale.parsed, Problem):
        fail(f"replaceProvisioningSettings with a stale ETag: {stale.status_code}")
    versions, _ = every_page(list_provisioning_settings_history, SettingsVersionPage, client=client)
    if not versions or versions[0].document.approval.mode != ApprovalMode.ALWAYS:
        fail(f"listProvisioningSettingsHistory: {[v.version for v in versions]}")

    decided = {}
    for verb, operation, final in (
        ("approve", approve_sync_run, RunStatus.APPROVED),
        ("reject", reject_sync_run, RunStatus.REJECTED),
    ):
        pushed = call(push_sync, RunView, client=client, body=PushBody(users=people, source=f"smoke-{verb}"))
        waiting = wait_for_status(client, pushed.id, {RunStatus.AWAITING_APPROVAL})
        if not waiting.approval_reasons or waiting.approval_expires_at is None:
            fail(f"a run awaiting approval has no reasons or expiry: {waiting}")
        run = call(operation, RunView, pushed.id, client=client, body=DecisionBody(reason=f"Smoke test: {verb}"))
        if run.status != final or run.decided_by is None or run.decision_reason != f"Smoke test: {verb}":
            fail(f"{verb} {pushed.id}: {run.status}, by {run.decided_by}, {run.decision_reason!r}")
        again = operation.sync_detailed(pushed.id, client=client, body=None)
        if again.status_code != 409 or not isinstance(again.parsed, Problem):
            fail(f"{verb} of a run no longer awaiting approval: {again.status_code}")
        decided[verb] = run
    return decided


def person(external_id, first, last, **fields):
    return UserRecord(
        external_id=external_id,
        email=f"{first.lower()}.{last.lower()}@example.com",
        first_name=first,
        last_name=last,
        start_date="2024-03-01",
        **fields,
    )


CALLED = set()


def main(base_url, token):
    client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
    stamp = str(int(time.time() * 1000))

    people = [
        person("E1", "Ada", "Lovelace", teams=["Engineering"], date_of_birth="12/10/1985", phone="+44 2071838750"),
        person("E2", "Grace", "Hopper", manager_external_id="E1", teams=["Engineering"]),
        person("E3", "Alan", "Turing", manager_external_id="E1", date_of_birth="1912-06-23"),
        person("E4", "Edsger", "Dijkstra", manager_external_id="E99"),
        person("E5", "Barbara", "Liskov", manager_external_id="E2", gender="F"),
    ]
    first = call(
        push_sync,
        RunView,
        client=client,
        body=PushBody(users=people, source="smoke", mode=SyncMode.INCREMENTAL, dry_run=False),
        idempotency_key=f"smoke-{stamp}",
    )
    first = wait_for(client, first.id)
    if first.counts.created + first.counts.updated + first.counts.unchanged < 3 or first.issues.total < 2:
        fail(f"first run: expected users applied and issues, got {first.counts} {first.issues}")

    # Changes of every shape: a text, a list (teams), a value cleared (null).
    people[1] = person("E2", "Grace", "Hopper", manager_external_id=None, teams=["Research", "Engineering"])
    people[4] = person("E5", "Barbara", "Liskov", manager_external_id="E1", phone="+1 2025550123")
    second = call(push_sync, RunView, client=client, body=PushBody(users=people, source="smoke"))
    second = wait_for(client, second.id)

    runs, run_pages = every_page(list_sync_runs, RunPage, client=client, limit=1)
    if {first.id, second.id} - {run.id for run in runs} or run_pages < 2:
        fail(f"listSyncRuns: {len(runs)} runs in {run_pages} pages")

    for run in (first, second):
        events, pages = every_page(list_sync_events, EventPage, run.id, client=client, limit=2)
        kinds = {event.kind for event in events}
        if kinds != {EventKind.UPDATE, EventKind.ISSUE} or pages < 2:
            fail(f"listSyncEvents of {run.id}: kinds {kinds} in {pages} pages")
        changed = [change for event in events for change in event.changes]
        if run is second and not any(isinstance(c.new, list) or c.new is None or c.old is None for c in changed):
            fail(f"the second run's changes hold no list or null: {changed}")
        issues = [event for event in events if event.kind == EventKind.ISSUE]
        if not all(isinstance(event.code, IssueCode) for event in issues):
            fail("an issue's code is not an IssueCode")

    code = issues[0].code if issues else IssueCode.MANAGER_DOES_NOT_EXIST
    entry = call(get_error_code, ErrorCode, code, client=client)
    if not entry.remediation:
        fail(f"getErrorCode {code}: no remediation steps")
    catalogue, _ = every_page(list_error_codes, ErrorCodePage, client=client, limit=10)
    if len(catalogue) != len(list(IssueCode)):
        fail(f"listErrorCodes: {len(catalogue)} codes, the document's IssueCode has {len(list(IssueCode))}")
    only_issues, _ = every_page(
        list_sync_events, EventPage, first.id, client=client, kind=EventKind.ISSUE, code=code
    )
    if not only_issues:
        fail(f"listSyncEvents filtered by code {code} is empty")

    users, _ = every_page(list_users, UserPage, client=client, limit=2)
    if len(users) < 3:
        fail(f"listUsers: {len(users)} users")
    one = call(get_user, UserView, users[0].id, client=client)
    call(update_user, UserView, one.id, client=client, body=UserPatch(upcoming_trips=1))
    invited = call(
        invite_user,
        UserView,
        client=client,
        body=Invitation(email=f"katherine.{stamp}@example.com", first_name="Katherine", last_name="Johnson"),
    )
    response = revoke_invitation.sync_detailed(invited.id, client=client)
    if response.status_code != 204:
        fail(f"revokeInvitation: {response.status_code}")
    CALLED.add("revoke_invitation")
    retried = call(retry_sync_run, RunView, second.id, client=client)
    wait_for(client, retried.id)

    downloads(client, first, second)
    decided = approvals(client, people)

    from hris_sync_client.models import Health

    call(get_health, Health, client=client)
    call(get_readiness, Health, client=client)
    metrics = call(get_metrics, str, client=client)
    if "hris_sync_http_requests_total" not in metrics:
        fail("getMetrics: no request counter")

    # The generated client has a function for every operation of the document (repeated
    # operationIds once made the generator drop some).
    generated = {
        module.name
        for group in pkgutil.iter_modules(api_package.__path__)
        for module in pkgutil.iter_modules(importlib.import_module(f"{api_package.__name__}.{group.name}").__path__)
    }
    with urllib.request.urlopen(f"{base_url}/api-docs/openapi.json", timeout=10) as answer:
        document = json.load(answer)
    declared = {
        snake_case(operation["operationId"])
        for item in document["paths"].values()
        for operation in item.values()
    }
    if declared != generated:
        fail(f"declared but not generated: {sorted(declared - generated)}; generated but not declared: {sorted(generated - declared)}")
    if CALLED - generated:
        fail(f"called but not generated: {sorted(CALLED - generated)}")
    if generated - CALLED:
        print(f"client smoke: not exercised by this session: {sorted(generated - CALLED)}")
    print(
        json.dumps(
            {
                "operations": len(generated),
                "runs": len(runs),
                "users": len(users),
                "error_codes": len(catalogue),
                "decided": {verb: run.status.value for verb, run in decided.items()},
            }
        )
    )
    print(f"client smoke: ok, {len(CALLED)} of the {len(generated)} operations called and parsed")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: client_smoke.py BASE_URL TOKEN")
    main(sys.argv[1], sys.argv[2])
