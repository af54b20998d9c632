"""export_catalog / import_catalog: a curated catalog moves between portals, matched by action UID."""

import json
import uuid
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from actions.models import ActionParameter, Category, Engine, RemoteAction
from tests.factories import EMEA, make_action, make_parameter

UID = "07844969-1889-4de3-9026-020af94be855"


@pytest.fixture
def curated(db, staff_group):
    """A small catalog with every kind of setting filled in."""
    engine = Engine.objects.create(database_uid=EMEA, name="engine-emea")
    storage = Category.objects.create(name="Storage", display_order=3)
    action = make_action(
        name="Clean up disk",
        slug="clean-up-disk",
        nexthink_uid=uuid.UUID(UID),
        description="Deletes temporary files.",
        category=storage,
        icon="disk",
        featured=True,
        timeout_seconds=120,
        confirmation_text="Sure?",
        cooldown_minutes=10,
        daily_limit_per_user=3,
        message_before="Before.",
        message_after="After.",
        keywords="storage, c drive",
    )
    action.groups.add(staff_group)
    action.engines.add(engine)
    make_parameter(action, name="Days", label="Days", kind="integer", min_value=1, max_value=30, default="7")
    make_parameter(action, name="Mode", label="Mode", kind="choice", choices="quick\nfull|Full", display_order=1)
    make_action(name="Fix printer", slug="fix-printer")
    return action


def export(tmp_path) -> tuple[dict, str]:
    path = tmp_path / "catalog.json"
    call_command("export_catalog", output=str(path))
    return json.loads(path.read_text()), str(path)


def run_import(path, *args) -> str:
    out = StringIO()
    call_command("import_catalog", path, *args, stdout=out)
    return out.getvalue()


def wipe_catalog():
    RemoteAction.objects.all().delete()
    Category.objects.all().delete()


def test_it_round_trips_the_catalog_through_a_file(curated, tmp_path):
    before, path = export(tmp_path)
    wipe_catalog()

    output = run_import(path)

    assert "2 created, 0 updated, 0 unchanged, 0 rejected." in output
    after, _ = export(tmp_path)
    assert after == before
    action = RemoteAction.objects.get(nexthink_uid=UID)
    assert (action.category.name, action.cooldown_minutes, action.daily_limit_per_user) == ("Storage", 10, 3)
    assert action.keywords == "storage, c drive"
    assert [g.name for g in action.groups.all()] == ["Field staff"]
    assert [e.database_uid for e in action.engines.all()] == [EMEA]
    assert list(action.parameters.values_list("name", "kind", "default")) == [
        ("Mode", "choice", ""),
        ("Days", "integer", "7"),
    ]


def test_it_writes_to_standard_output_without_a_file(curated, capsys):
    call_command("export_catalog")

    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "fix-my-device-catalog"
    assert [a["slug"] for a in data["actions"]] == ["clean-up-disk", "fix-printer"]


def test_it_changes_nothing_when_the_same_file_is_imported_twice(curated, tmp_path):
    _, path = export(tmp_path)
    ids = sorted(RemoteAction.objects.values_list("pk", flat=True))

    first, second = run_import(path), run_import(path)

    assert "0 created, 0 updated, 2 unchanged, 0 rejected." in first
    assert first.splitlines()[-1] == second.splitlines()[-1]
    assert sorted(RemoteAction.objects.values_list("pk", flat=True)) == ids
    assert ActionParameter.objects.count() == 2


def test_it_updates_an_action_matched_by_uid_and_replaces_its_parameters(curated, tmp_path):
    data, path = export(tmp_path)
    entry = next(a for a in data["actions"] if a["nexthink_uid"] == UID)
    entry["name"] = "Free up disk space"
    entry["parameters"] = [entry["parameters"][1] | {"max_value": 60}]
    (tmp_path / "catalog.json").write_text(json.dumps(data))

    output = run_import(path)

    assert f"updated: Free up disk space ({UID})" in output
    assert "0 created, 1 updated, 1 unchanged, 0 rejected." in output
    action = RemoteAction.objects.get(nexthink_uid=UID)
    assert action.pk == curated.pk and action.name == "Free up disk space"
    assert list(action.parameters.values_list("name", "max_value")) == [("Days", 60)]


def test_it_rejects_invalid_actions_with_reasons_and_imports_the_rest(curated, tmp_path):
    data, path = export(tmp_path)
    wipe_catalog()
    good = data["actions"][1]
    bad_param = data["actions"][0] | {
        "parameters": [{**data["actions"][0]["parameters"][0], "regex": "[a-", "kind": "text", "choices": ""}]
    }
    bad_group = good | {"nexthink_uid": str(uuid.uuid4()), "slug": "other", "groups": ["Nobody here"]}
    same_slug = good | {"nexthink_uid": str(uuid.uuid4())}
    data["actions"] = [bad_param, good, bad_group, same_slug, {"nexthink_uid": "nope", "name": "X", "slug": "x"}]
    (tmp_path / "catalog.json").write_text(json.dumps(data))

    with pytest.raises(CommandError, match="4 action"):
        run_import(path)

    assert list(RemoteAction.objects.values_list("slug", flat=True)) == ["fix-printer"]


def test_it_reports_what_it_rejected_and_why(curated, tmp_path, capsys):
    data, path = export(tmp_path)
    data["actions"][0]["parameters"][0]["regex"] = "[a-"
    data["actions"][0]["parameters"][0]["kind"] = "text"
    data["actions"][0]["parameters"][0]["choices"] = ""
    data["actions"][1]["groups"] = ["Nobody here"]
    data["actions"].append({"nexthink_uid": str(uuid.uuid4()), "name": "Dup", "slug": "fix-printer"})
    (tmp_path / "catalog.json").write_text(json.dumps(data))
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("import_catalog", path, stdout=out)

    report = out.getvalue()
    assert f"rejected: Clean up disk ({UID}): parameter 'Mode': regex: This regex does not compile" in report
    assert "rejected: Fix printer (" in report and "no such group here: Nobody here (create it first)" in report
    assert "rejected: Dup (" in report and "slug: Remote action with this Slug already exists." in report
    assert "0 created, 0 updated, 0 unchanged, 3 rejected." in report
    assert RemoteAction.objects.get(nexthink_uid=UID).parameters.get(name="Mode").regex == ""


def test_it_rejects_an_enabled_action_whose_uid_is_a_duplicate_placeholder(db, tmp_path):
    data = {
        "format": "fix-my-device-catalog",
        "version": 1,
        "categories": [],
        "actions": [
            {"nexthink_uid": "00000000-0000-4000-8abc-0123456789ab", "name": "Copy", "slug": "copy", "enabled": True}
        ],
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))

    with pytest.raises(CommandError):
        run_import(str(path))

    assert RemoteAction.objects.count() == 0


def test_it_changes_nothing_in_a_dry_run(curated, tmp_path):
    _, path = export(tmp_path)
    wipe_catalog()

    output = run_import(path, "--dry-run")

    assert "[dry run] 2 created" in output
    assert RemoteAction.objects.count() == 0 and Category.objects.count() == 0


def test_it_refuses_a_file_that_is_not_a_catalog(db, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"hello": "world"}))
    broken = tmp_path / "broken.json"
    broken.write_text("{")

    with pytest.raises(CommandError, match="Not a catalog export"):
        run_import(str(path))
    with pytest.raises(CommandError, match="not valid JSON"):
        run_import(str(broken))


def test_it_refuses_a_group_that_does_not_exist_rather_than_widen_the_audience(db, tmp_path):
    Group.objects.create(name="Finance")
    data = {
        "format": "fix-my-device-catalog",
        "version": 1,
        "categories": [],
        "actions": [{"nexthink_uid": UID, "name": "SAP", "slug": "sap", "groups": ["Finance", "Board"]}],
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))

    with pytest.raises(CommandError):
        run_import(str(path))

    assert RemoteAction.objects.count() == 0


def test_it_keeps_the_order_of_parameters_that_share_a_display_order(db, tmp_path):
    action = make_action(name="Clean up disk", slug="clean-up-disk", nexthink_uid=uuid.UUID(UID))
    for name in ("Zone", "Mode", "Days"):  # same display order: the portal shows them as created
        make_parameter(action, name=name, label=name, display_order=5)
    make_parameter(action, name="Accept", label="Accept", display_order=1)
    shown = list(action.parameters.values_list("name", flat=True))
    data, path = export(tmp_path)
    wipe_catalog()

    run_import(path)

    imported = RemoteAction.objects.get(nexthink_uid=UID)
    assert list(imported.parameters.values_list("name", flat=True)) == shown == ["Accept", "Zone", "Mode", "Days"]
    assert [p["display_order"] for p in data["actions"][0]["parameters"]] == [1, 5, 6, 7]
    assert "0 created, 0 updated, 1 unchanged, 0 rejected." in run_import(path)


def test_it_imports_parameters_in_the_order_the_file_lists_them(db, tmp_path):
    make_action(name="Clean up disk", slug="clean-up-disk", nexthink_uid=uuid.UUID(UID))
    data, path = export(tmp_path)
    data["actions"][0]["parameters"] = [
        {"name": name, "label": name, "kind": "text", "display_order": order}
        for name, order in (("Zone", 100), ("Mode", 100), ("Days", 50))
    ]
    (tmp_path / "catalog.json").write_text(json.dumps(data))

    first = run_import(path)
    second = run_import(path)

    action = RemoteAction.objects.get(nexthink_uid=UID)
    assert list(action.parameters.values_list("name", "display_order")) == [("Zone", 100), ("Mode", 101), ("Days", 102)]
    assert "1 updated" in first and "0 created, 0 updated, 1 unchanged, 0 rejected." in second


def test_it_carries_the_infinity_id_output_names_and_ticket_fields(curated, tmp_path):
    RemoteAction.objects.filter(nexthink_uid=UID).update(
        nql_id="#clean_up_disk",
        output_labels={"FreedMB": "Space freed (MB)"},
        ticket_category="hardware",
        ticket_assignment_group="Desktop support",
    )
    _, path = export(tmp_path)
    wipe_catalog()

    run_import(path)

    action = RemoteAction.objects.get(nexthink_uid=UID)
    assert (action.nql_id, action.output_labels) == ("#clean_up_disk", {"FreedMB": "Space freed (MB)"})
    assert (action.ticket_category, action.ticket_assignment_group) == ("hardware", "Desktop support")
