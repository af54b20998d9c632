"""Nexthink Infinity workflows beside remote actions, through the real seam and the simulator over HTTP:
listed and imported, triggered for the device and the employee, followed up through NQL to their outcome."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from actions.catalog.nexthink_import import workflows_import
from actions.devices.resolution import resolve_devices_for
from actions.models import Device, RemoteAction, Run
from actions.nexthink.errors import ActApiError, ActInputError
from actions.nexthink.infinity.client import infinity_client_from_settings
from actions.runs.dispatch import run_dispatch
from actions.runs.follow_up import runs_follow_up
from actions.runs.states import is_final
from actions.runs.submit import run_submit
from tests.factories import make_action, run_command

Status = Run.Status
ALICE_LAPTOP = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"  # the simulator's; CORP\alice
WORKFLOW_EXECUTE = "/api/v2/workflows/execute"
NQL = "/api/v2/nql/execute"


@pytest.fixture
def infinity(use_infinity, settings):
    settings.DEVICE_RESOLVERS = ["directory", "nql"]
    settings.NXQL_USER_NAME_TEMPLATE = "CORP\\{username}"
    return use_infinity


def workflow(nql_id: str, **fields) -> RemoteAction:
    return make_action(kind=RemoteAction.Kind.WORKFLOW, nql_id=nql_id, name=nql_id.lstrip("#"), **fields)


def run_to_the_end(run: Run, infinity, *, steps: int = 10) -> Run:
    for _ in range(steps):
        infinity.advance(5)
        Run.objects.filter(pk=run.pk).update(
            next_check_at=timezone.now() - timedelta(hours=1)
        )  # due now, whatever the clocks' precision
        runs_follow_up()
        run.refresh_from_db()
        if is_final(run.status):
            break
    return run


# --- The client against the simulator ----------------------------------------------------------------
def test_the_client_lists_the_workflows_the_api_may_trigger_on_a_device(infinity):
    workflows = {w.id: w for w in infinity_client_from_settings().workflows()}

    # Manual-only workflows are not listed for the API; an inactive one is, marked inactive.
    assert sorted(workflows) == ["#fix_vpn_connection", "#free_disk_space_with_consent", "#old_onboarding"]
    assert workflows["#fix_vpn_connection"].active and not workflows["#old_onboarding"].active
    asked = [r["path"] for r in infinity.requests() if r["path"] == "/api/v1/workflows"]
    assert len(asked) == 2  # DEVICE and USER_AND_DEVICE: the API requires one dependency per call


def test_the_client_triggers_a_workflow_for_the_device_and_the_employee(infinity):
    accepted = infinity_client_from_settings().execute_workflow(
        workflow_id="#fix_vpn_connection", device=ALICE_LAPTOP, user_upn="alice@corp.example", follow_minutes=90
    )

    [sent] = infinity.requests(WORKFLOW_EXECUTE)
    assert sent["body"] == {
        "workflowId": "#fix_vpn_connection",
        "devices": [{"collectorUid": ALICE_LAPTOP}],
        "users": [{"upn": "alice@corp.example"}],
        "params": {},
    }
    assert accepted.expires_in_minutes == 90 and accepted.request_id


def test_a_user_name_that_is_no_upn_is_not_sent_and_a_bad_device_nothing_at_all(infinity):
    client = infinity_client_from_settings()
    client.execute_workflow(workflow_id="#fix_vpn_connection", device=ALICE_LAPTOP, user_upn="CORP\\alice")
    with pytest.raises(ActInputError):
        client.execute_workflow(workflow_id="#fix_vpn_connection", device="LAPTOP-ALICE")

    [sent] = infinity.requests(WORKFLOW_EXECUTE)
    assert sent["body"]["users"] == []


def test_a_credential_without_the_workflows_permission_is_refused(infinity, settings):
    settings.NEXTHINK_CLIENT_ID, settings.NEXTHINK_CLIENT_SECRET = "no-workflows", "no-workflows-demo"

    with pytest.raises(ActApiError) as refused:
        infinity_client_from_settings().workflows()

    assert refused.value.http_status == 403


# --- From execute to the outcome -------------------------------------------------------------------------
def test_a_workflow_run_is_triggered_then_followed_to_its_outcome(infinity, alice):
    vpn = workflow("#fix_vpn_connection", output_labels={"outcome": "Outcome"})
    resolve_devices_for(alice)
    run = run_submit(user=alice, action=vpn, device=Device.objects.get(uid=ALICE_LAPTOP), params={})

    run_dispatch(run_id=run.pk)

    run.refresh_from_db()
    assert (run.action_kind, run.status) == ("workflow", Status.FOLLOWING)
    [sent] = infinity.requests(WORKFLOW_EXECUTE)
    assert sent["body"]["users"] == [{"upn": "alice@corp.example"}]
    assert infinity.requests("/api/v1/act/execute") == []  # not as a remote action

    run = run_to_the_end(run, infinity)

    assert (run.status, run.device_status) == (Status.DONE, "success")
    assert run.outputs["outcome"] == "resolved"
    followed = [r["body"] for r in infinity.requests(NQL)]
    assert {b["queryId"] for b in followed if "request_id" in b["parameters"]} == {"#portal_workflow_executions"}


def test_a_failed_workflow_ends_failed_on_the_device_with_its_details(infinity, alice, client):
    disk = workflow("#free_disk_space_with_consent")
    resolve_devices_for(alice)
    run = run_submit(user=alice, action=disk, device=Device.objects.get(uid=ALICE_LAPTOP), params={})
    run_dispatch(run_id=run.pk)

    run = run_to_the_end(run, infinity)

    assert run.status == Status.DEVICE_FAILED
    assert run.device_status_details == "The employee declined the clean-up."
    client.force_login(alice)
    assert client.get(run.get_absolute_url()).status_code == 200


def test_without_its_saved_query_a_workflow_run_is_not_read_and_not_resent(infinity, alice, settings):
    vpn = workflow("#fix_vpn_connection")
    resolve_devices_for(alice)
    run = run_submit(user=alice, action=vpn, device=Device.objects.get(uid=ALICE_LAPTOP), params={})
    run_dispatch(run_id=run.pk)
    settings.NEXTHINK_NQL_WORKFLOW_EXECUTIONS_QUERY = ""

    run = run_to_the_end(run, infinity, steps=2)

    assert run.status == Status.FOLLOWING  # looked at again later, until Nexthink's wait is over
    assert len(infinity.requests(WORKFLOW_EXECUTE)) == 1


# --- Import and the catalog --------------------------------------------------------------------------------
def test_the_import_creates_disabled_workflows_and_changes_nothing_the_second_time(infinity, db):
    workflows = infinity_client_from_settings().workflows()

    first = workflows_import(workflows)
    second = workflows_import(workflows)

    imported = {w.nql_id: w for w in RemoteAction.objects.filter(kind=RemoteAction.Kind.WORKFLOW)}
    assert sorted(imported) == ["#fix_vpn_connection", "#free_disk_space_with_consent"]
    assert not any(w.enabled for w in imported.values())
    assert imported["#fix_vpn_connection"].output_labels["outcome"] == "Outcome"
    assert (len(first.created), len(first.skipped)) == (2, 1)  # the inactive one is skipped
    assert (second.created, len(second.unchanged)) == ([], 2)


def test_a_workflow_and_a_remote_action_may_share_an_nql_id(infinity, db):
    make_action(nql_id="#fix_vpn_connection")

    report = workflows_import(infinity_client_from_settings().workflows())

    assert report.rejected == []
    assert RemoteAction.objects.filter(nql_id="#fix_vpn_connection").count() == 2


def test_the_admin_button_imports_workflows_too(infinity, admin_client):
    response = admin_client.post(reverse("admin:actions_remoteaction_import_from_nexthink"), follow=True)

    assert "Workflows imported from Nexthink: 2 created" in response.content.decode()
    assert RemoteAction.objects.filter(kind=RemoteAction.Kind.WORKFLOW).count() == 2


def test_the_import_command_imports_workflows_too(infinity, db):
    code, out, _ = run_command("import_remote_actions")

    assert code == 0
    assert "workflow created (disabled): Fix my VPN connection (#fix_vpn_connection)" in out
    assert "workflow skipped, not active in Nexthink: Old onboarding (#old_onboarding)" in out


def test_classic_hides_workflows_from_the_catalog(alice_client, settings):
    make_action(name="Clear the print queue", slug="print-queue")
    hidden = workflow("#fix_vpn_connection", slug="fix-vpn")
    settings.NEXTHINK_PLATFORM = "classic"

    catalog = alice_client.get(reverse("catalog")).content.decode()

    assert "Clear the print queue" in catalog and "fix_vpn_connection" not in catalog
    assert alice_client.get(hidden.get_absolute_url()).status_code == 404


def test_infinity_offers_workflows_in_the_catalog(infinity, alice_client):
    shown = workflow("#fix_vpn_connection", slug="fix-vpn")

    catalog = alice_client.get(reverse("catalog")).content.decode()

    assert "fix_vpn_connection" in catalog
    assert alice_client.get(shown.get_absolute_url()).status_code == 200


def test_classic_never_sends_a_workflow(settings):
    from actions.nexthink.platform import ClassicPlatform, Send

    what = Send(
        reference="r",
        action_uid="00000000-0000-0000-0000-000000000001",
        action_nql_id="#w",
        device_uid="d" * 32,
        engine_uids=(),
        timeout_seconds=60,
        params={},
        reason="",
        kind="workflow",
    )
    with pytest.raises(ActInputError):
        ClassicPlatform().send(what, still_ours=lambda: True)


def test_the_infinity_demo_offers_the_simulators_workflows_once(db, settings):
    from django.core.management import call_command

    settings.DEBUG, settings.NEXTHINK_PLATFORM = True, "infinity"

    call_command("load_demo", stdout=None)
    call_command("load_demo", stdout=None)

    offered = RemoteAction.objects.filter(kind=RemoteAction.Kind.WORKFLOW, enabled=True)
    assert sorted(offered.values_list("nql_id", flat=True)) == ["#fix_vpn_connection", "#free_disk_space_with_consent"]


def test_a_workflow_without_its_nql_id_is_refused_in_the_admin(admin_client):
    response = admin_client.post(
        reverse("admin:actions_remoteaction_add"),
        {
            "name": "VPN",
            "slug": "vpn",
            "kind": "workflow",
            "nexthink_uid": "3d6a1f0e-2b4c-4e8d-9a7f-1c2b3d4e5f60",
            "nql_id": "",
            "icon": "wrench",
            "display_order": 100,
            "cooldown_minutes": 0,
            "parameters-TOTAL_FORMS": 0,
            "parameters-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 200  # the form again, with its error
    assert "A workflow runs by its NQL id" in response.content.decode()
    assert not RemoteAction.objects.exists()


def test_the_catalog_file_keeps_an_entrys_kind(db):
    from actions.catalog.transfer import export_catalog, import_catalog

    workflow("#fix_vpn_connection", slug="fix-vpn")
    exported = export_catalog()
    RemoteAction.objects.all().delete()

    import_catalog(exported)

    assert RemoteAction.objects.get(slug="fix-vpn").kind == RemoteAction.Kind.WORKFLOW


def test_a_workflow_is_tried_by_hand_and_read_back(infinity):
    code, out, _ = run_command(
        "act_run", "--workflow", "#fix_vpn_connection", "--device", ALICE_LAPTOP, "--upn", "it@corp.example", "--json"
    )
    assert code == 0
    request_id = json.loads(out)["request_id"]
    infinity.advance(60)

    code, out, _ = run_command("act_status", "--workflow", "--request", request_id, "--json")

    assert code == 0
    [execution] = json.loads(out)["executions"]
    assert (execution["status"], execution["outputs"]["outcome"]) == ("success", "resolved")
    assert infinity.requests(WORKFLOW_EXECUTE)[0]["body"]["users"] == [{"upn": "it@corp.example"}]
