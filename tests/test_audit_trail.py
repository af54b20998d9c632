"""The audit trail: every change to what employees may run, and IT's runs for others, on record;
read-only in admin for everyone; exported as CSV that a spreadsheet cannot run."""

import csv
import io
import re
from datetime import timedelta

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from actions.admin.audit import csv_safe
from actions.devices.engines import engines_sync
from actions.devices.resolution import _store_nql_answer
from actions.models import ActionParameter, Category, Device, Engine, RemoteAction, Run
from tests.factories import EMEA, make_action, make_device, make_parameter, submit

CHANGELIST = reverse("admin:auditlog_logentry_changelist")
EXPORT = reverse("admin:auditlog_logentry_export")


def records(obj) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).order_by("timestamp", "pk"))


def last_change(obj) -> dict:
    return records(obj)[-1].changes_dict


# --- Each kind of change, with before/after, person and address ---------------------------------
def test_a_curators_change_in_admin_is_recorded_with_before_after_person_and_address(client, carol, settings):
    settings.BEHIND_TLS_PROXY = False
    action = make_action(name="Clear Teams cache", enabled=True)
    client.force_login(carol)

    response = client.post(
        reverse("admin:actions_remoteaction_changelist"),
        {"action": "disable_actions", "_selected_action": [action.pk]},
        REMOTE_ADDR="192.0.2.7",
        HTTP_X_FORWARDED_FOR="203.0.113.66",  # not behind our proxy: the client's to forge, not recorded
    )

    assert response.status_code == 302
    entry = records(action)[-1]
    assert entry.action == LogEntry.Action.UPDATE
    assert entry.changes_dict == {"enabled": ["True", "False"]}
    assert (entry.actor, entry.remote_addr) == (carol, "192.0.2.7")


def test_each_kind_of_curated_change_is_recorded(alice, bob, carol, finance):
    earlier = LogEntry.objects.count()
    with set_actor(carol, remote_addr="198.51.100.4"):
        category = Category.objects.create(name="Network")
        category.name = "Networking"
        category.save()
        action = make_action(name="Repair VPN", cooldown_minutes=0)
        action.cooldown_minutes = 30
        action.save()
        action.groups.add(finance)  # who may see it
        engine = Engine.objects.create(database_uid=EMEA, name="engine-emea")
        action.engines.add(engine)
        engine.name = "Engine EMEA"
        engine.save()
        param = make_parameter(action, name="Mode", label="Mode")
        param.label = "How thorough"
        param.save()
        device = make_device(alice, name="LAPTOP-9")
        device.owner = bob
        device.save()
        param_pk = param.pk
        param.delete()

    assert last_change(category) == {"name": ["Network", "Networking"]}
    assert records(action)[1].changes_dict == {"cooldown_minutes": ["0", "30"]}
    assert {"type": "m2m", "operation": "add", "objects": ["Finance"]} in [
        e.changes_dict.get("groups") for e in records(action)
    ]
    assert {"type": "m2m", "operation": "add", "objects": ["engine-emea"]} in [
        e.changes_dict.get("engines") for e in records(action)
    ]
    assert last_change(engine) == {"name": ["engine-emea", "Engine EMEA"]}
    assert last_change(device) == {"owner": ["alice", "bob"]}
    param_records = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(ActionParameter), object_pk=str(param_pk)
    ).order_by("timestamp", "pk")
    assert [e.action for e in param_records] == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE, LogEntry.Action.DELETE]
    assert param_records[1].changes_dict == {"label": ["Mode", "How thorough"]}
    made_here = LogEntry.objects.order_by("pk")[earlier:]
    assert {(e.actor_id, e.remote_addr) for e in made_here} == {(carol.pk, "198.51.100.4")}


def test_a_duplicated_actions_parameters_are_recorded(admin_client):
    action = make_action(name="Clean up disk")
    make_parameter(action, name="Days", label="Days")

    admin_client.post(
        reverse("admin:actions_remoteaction_changelist"),
        {"action": "duplicate_actions", "_selected_action": [action.pk]},
    )

    copy = RemoteAction.objects.get(name="Copy of Clean up disk")
    created = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(ActionParameter),
        object_pk=str(copy.parameters.get().pk),
        action=LogEntry.Action.CREATE,
    )
    assert created.count() == 1


def test_an_engine_no_longer_listed_and_a_device_no_longer_owned_are_recorded(use_simulator, alice):
    retired = Engine.objects.create(database_uid="0" * 32, name="engine-retired", status="CONNECTED")
    device = make_device(alice, uid="0f0e0d0c-0b0a-4908-8706-050403020100", source=Device.Source.NQL)

    engines_sync()
    _store_nql_answer(user=alice, found=[], now=timezone.now())

    assert last_change(retired)["status"][0] == "CONNECTED"
    assert last_change(device)["owner"] == ["alice", "None"]


# --- Events that are not a change of a curated model --------------------------------------------
def test_an_admin_retry_and_a_run_on_another_persons_device_are_recorded(alice, laptop, action, admin_user):
    first = submit(alice, action, laptop, requested_by=admin_user)
    Run.objects.filter(pk=first.pk).update(status=Run.Status.FAILED)
    retry = submit(alice, action, laptop, requested_by=admin_user, retry_of=first)
    submit(alice, action, laptop)  # alice's own run: nothing to record

    (for_other,) = records(first)
    (retried,) = records(retry)
    assert for_other.additional_data["event"] == "run_for_other"
    assert retried.additional_data["event"] == "admin_retry"
    assert retried.additional_data["retry of run"] == str(first.pk)
    assert retried.actor == for_other.actor == admin_user
    assert for_other.additional_data["employee"] == "alice" and "LAPTOP-ALICE" in for_other.additional_data["device"]
    assert LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Run)).count() == 2


# --- Read-only for everyone ---------------------------------------------------------------------
def test_nobody_can_add_change_or_delete_a_record_in_admin(admin_client, carol, client):
    with set_actor(None):
        make_action(name="Clear Teams cache")
    entry = LogEntry.objects.get()
    change_url = reverse("admin:auditlog_logentry_change", args=[entry.pk])

    assert admin_client.get(reverse("admin:auditlog_logentry_add")).status_code == 403
    assert admin_client.post(change_url, {"object_repr": "edited"}).status_code == 403
    assert (
        admin_client.post(reverse("admin:auditlog_logentry_delete", args=[entry.pk]), {"post": "yes"}).status_code
        == 403
    )
    listed = admin_client.get(CHANGELIST)
    form = listed.context["action_form"]  # None: the list offers no action at all
    assert form is None or "delete_selected" not in dict(form.fields["action"].choices)
    entry.refresh_from_db()
    assert entry.object_repr == "Clear Teams cache"

    client.force_login(carol)  # a curator reads it
    assert client.get(CHANGELIST).status_code == 200
    assert client.get(change_url).status_code == 200


def test_only_those_given_the_view_permission_read_it(client, db):
    from django.contrib.auth import get_user_model

    helpdesk = get_user_model().objects.create_user("dave", is_staff=True)
    helpdesk.groups.add(Group.objects.create(name="Helpdesk"))
    client.force_login(helpdesk)

    assert client.get(CHANGELIST).status_code in (302, 403)
    assert client.get(EXPORT).status_code in (302, 403)


def test_curators_filter_the_trail_by_person_and_object_type(client, carol, admin_user):
    with set_actor(carol, remote_addr="192.0.2.9"):
        by_carol = Category.objects.create(name="Network")
    with set_actor(None):
        by_portal = make_action(name="Clear Teams cache")
    client.force_login(carol)

    def listed(**query) -> set[int]:
        return {entry.pk for entry in client.get(CHANGELIST, query).context["cl"].result_list}

    [carols] = records(by_carol)
    [portals] = records(by_portal)
    assert listed(person=carol.pk) == {carols.pk}
    assert listed(person="portal") == {portals.pk} | {e.pk for e in LogEntry.objects.filter(actor=None)}
    assert listed(object_type=ContentType.objects.get_for_model(RemoteAction).pk) == {portals.pk}
    assert listed(q="carol") == {carols.pk}


def test_an_action_s_and_a_device_s_admin_page_link_to_their_own_records(admin_client, alice, bob):
    actions = make_action(name="Clear Teams cache"), make_action(name="Restart spooler")
    devices = make_device(alice), make_device(bob)

    for (obj, other), admin_name in ((actions, "remoteaction"), (devices, "device")):
        page = admin_client.get(reverse(f"admin:actions_{admin_name}_change", args=[obj.pk])).content.decode()
        link = re.search(r'<a href="([^"]+)">Audit records</a>', page)
        assert link, page
        listed = {e.pk for e in admin_client.get(link.group(1).replace("&amp;", "&")).context["cl"].result_list}
        assert listed == {e.pk for e in records(obj)} and records(other)[0].pk not in listed


# --- CSV export ---------------------------------------------------------------------------------
def test_the_csv_export_follows_the_filters_and_cannot_run_as_a_formula(admin_client, carol):
    with set_actor(carol, remote_addr="192.0.2.9"):
        Category.objects.create(name='=HYPERLINK("http://evil.example","x")')
        make_action(name="@SUM(1+1)")
    category_type = ContentType.objects.get_for_model(Category)

    response = admin_client.get(EXPORT, {"object_type": category_type.pk})

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    header, (row,) = rows[0], rows[1:]
    line = dict(zip(header, row, strict=True))
    assert line["object"] == '\'=HYPERLINK("http://evil.example","x")'
    assert (line["person"], line["address"], line["what"]) == ("carol", "192.0.2.9", "Created")
    assert line["object type"] == "category"
    assert (timezone.now() - timezone.datetime.fromisoformat(line["when (UTC)"])) < timedelta(hours=1)


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@A1", "\t=1"])
def test_a_cell_a_spreadsheet_would_run_is_quoted(cell):
    assert csv_safe(cell) == "'" + cell
    assert csv_safe("Repair VPN") == "Repair VPN"
