"""import_remote_actions and its admin button: portal actions from Nexthink Infinity's remote action list."""

import io
import json

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from actions.models import ActionParameter, RemoteAction

pytestmark = pytest.mark.django_db

API_ENABLED = ["#clear_teams_cache", "#restart_windows_service", "#repair_vpn", "#free_disk_space"]


def import_remote_actions(*args) -> str:
    out = io.StringIO()
    call_command("import_remote_actions", *args, stdout=out)
    return out.getvalue()


def snapshot() -> list:
    return [
        (a.nql_id, str(a.nexthink_uid), a.name, a.slug, a.enabled, a.updated_at)
        + tuple((p.name, p.label, p.kind, p.choices, p.help_text, p.required) for p in a.parameters.all())
        for a in RemoteAction.objects.order_by("nql_id")
    ]


def replace_actions(sim, change) -> None:
    """Change the simulator's action list for this test (it is reset afterwards)."""
    actions = sim.server.infinity.config["remote_actions"]
    change(actions)


@pytest.fixture
def restore_actions(use_infinity):
    import copy

    original = copy.deepcopy(use_infinity.server.infinity.config["remote_actions"])
    yield use_infinity
    use_infinity.server.infinity.config["remote_actions"] = original


def test_it_creates_a_disabled_action_for_each_api_enabled_one(use_infinity):
    out = import_remote_actions()

    actions = {a.nql_id: a for a in RemoteAction.objects.filter(kind="remote_action")}
    assert sorted(actions) == sorted(API_ENABLED)
    assert not any(a.enabled for a in actions.values())
    teams = actions["#clear_teams_cache"]
    assert (teams.name, str(teams.nexthink_uid)) == ("Clear Teams cache", "5b2f3c1e-8a47-4d6e-9f10-2a3b4c5d6e7f")
    assert teams.summary == "Quits Microsoft Teams and empties its cache folder."
    assert "skipped, API trigger not enabled in Nexthink: Collect inventory (#collect_inventory)" in out
    assert "4 created, 0 updated, 0 unchanged, 1 not API-enabled, 0 rejected" in out


def test_inputs_become_parameters_options_choices_and_custom_values_free_text(use_infinity):
    import_remote_actions()

    [service] = RemoteAction.objects.get(nql_id="#restart_windows_service").parameters.all()
    assert (service.name, service.label, service.kind, service.choices) == (
        "ServiceName",
        "Service",
        ActionParameter.Kind.CHOICE,
        "Spooler\nWSearch\nBITS",
    )
    [profile] = RemoteAction.objects.get(nql_id="#repair_vpn").parameters.all()
    assert (profile.kind, profile.choices) == (ActionParameter.Kind.TEXT, "")
    assert profile.help_text == "The profile to reset For example: Corporate, Lab."
    [free] = RemoteAction.objects.get(nql_id="#free_disk_space").parameters.all()
    assert free.kind == ActionParameter.Kind.TEXT and free.required


def test_a_second_run_changes_nothing(use_infinity):
    import_remote_actions()
    before = snapshot()

    out = import_remote_actions()

    assert snapshot() == before
    assert "0 created, 0 updated, 4 unchanged" in out


def test_a_dry_run_shows_what_would_change_and_changes_nothing(use_infinity):
    out = import_remote_actions("--dry-run")

    assert RemoteAction.objects.count() == 0
    assert "[dry run] created (disabled): Clear Teams cache (#clear_teams_cache)" in out
    assert "[dry run] 4 created" in out


def test_a_rerun_keeps_the_curators_choices_and_follows_new_inputs(restore_actions):
    import_remote_actions()
    action = RemoteAction.objects.get(nql_id="#restart_windows_service")
    action.name, action.enabled = "Restart a service", True
    action.save()
    service = action.parameters.get()
    service.label, service.choices = "Which service", "Spooler|Print spooler\nWSearch|Search\nBITS|Transfers"
    service.save()

    def change(actions):
        script = next(a for a in actions if a["id"] == "#restart_windows_service")["scriptInfo"]
        script["inputs"][0]["options"] = ["Spooler", "WSearch"]
        script["inputs"].append(
            {"id": "Force", "name": "Force", "description": "", "options": [], "allowCustomValue": True}
        )
        next(a for a in actions if a["id"] == "#repair_vpn")["scriptInfo"]["inputs"] = []

    replace_actions(restore_actions, change)
    out = import_remote_actions()

    action.refresh_from_db()
    assert (action.name, action.enabled) == ("Restart a service", True)
    params = {p.name: p for p in action.parameters.all()}
    assert params["ServiceName"].label == "Which service"
    assert params["ServiceName"].choices == "Spooler\nWSearch"
    assert params["Force"].kind == ActionParameter.Kind.TEXT
    assert not RemoteAction.objects.get(nql_id="#repair_vpn").parameters.exists()
    assert "parameter Profile removed" in out and "parameter Force added" in out
    assert "2 updated" in out


def test_labels_are_kept_while_the_option_values_stay_the_same(use_infinity):
    import_remote_actions()
    service = RemoteAction.objects.get(nql_id="#restart_windows_service").parameters.get()
    service.choices = "BITS|Transfers\nSpooler|Print spooler\nWSearch|Search"
    service.save()

    import_remote_actions()

    service.refresh_from_db()
    assert service.choices == "BITS|Transfers\nSpooler|Print spooler\nWSearch|Search"


def test_an_action_created_by_hand_is_matched_by_its_uuid(use_infinity):
    RemoteAction.objects.create(
        name="Teams", slug="teams", nexthink_uid="5b2f3c1e-8a47-4d6e-9f10-2a3b4c5d6e7f", enabled=True
    )

    out = import_remote_actions()

    action = RemoteAction.objects.get(slug="teams")
    assert (action.nql_id, action.name, action.enabled) == ("#clear_teams_cache", "Teams", True)
    assert "NQL id set to #clear_teams_cache" in out


def test_an_input_the_portal_cannot_send_rejects_the_action_and_exits_1(restore_actions):
    def change(actions):
        inputs = next(a for a in actions if a["id"] == "#free_disk_space")["scriptInfo"]["inputs"]
        inputs[0]["id"] = "Minimum free GB"

    replace_actions(restore_actions, change)

    with pytest.raises(CommandError):
        import_remote_actions()

    assert not RemoteAction.objects.filter(nql_id="#free_disk_space").exists()
    assert RemoteAction.objects.filter(nql_id="#clear_teams_cache").exists()


def test_an_action_no_longer_listed_is_reported_and_left_alone(restore_actions):
    import_remote_actions()
    replace_actions(restore_actions, lambda actions: actions.pop(0))

    out = import_remote_actions()

    assert "no longer listed as API-enabled by Nexthink (left as it is): Clear Teams cache (#clear_teams_cache)" in out
    assert RemoteAction.objects.filter(nql_id="#clear_teams_cache").exists()


def test_it_stops_when_nexthink_cannot_be_read(use_infinity):
    use_infinity.fault("remote_actions", "html_503")

    with pytest.raises(CommandError, match="Could not read Nexthink's remote actions"):
        import_remote_actions()

    assert RemoteAction.objects.count() == 0


def test_it_needs_the_infinity_platform(use_simulator, db):
    with pytest.raises(CommandError, match="NEXTHINK_PLATFORM=infinity"):
        import_remote_actions()


# --- The admin button ----------------------------------------------------------------------------
def test_a_curator_imports_from_the_action_list(use_infinity, client, carol, curators):
    from django.contrib.auth.models import Permission

    curators.permissions.add(*Permission.objects.filter(codename__in=["add_remoteaction", "change_remoteaction"]))
    client.force_login(carol)
    page = client.get(reverse("admin:actions_remoteaction_changelist"))
    assert b"Import API-enabled actions and workflows from Nexthink" in page.content

    response = client.post(reverse("admin:actions_remoteaction_import_from_nexthink"), follow=True)

    assert RemoteAction.objects.filter(enabled=False, kind="remote_action").count() == 4
    assert "4 created" in response.content.decode()


def test_the_button_is_not_offered_on_classic(use_simulator, admin_client):
    page = admin_client.get(reverse("admin:actions_remoteaction_changelist"))

    assert b"Import API-enabled actions and workflows from Nexthink" not in page.content
    assert admin_client.post(reverse("admin:actions_remoteaction_import_from_nexthink")).status_code == 403


def test_the_import_view_takes_posts_only(use_infinity, admin_client):
    assert admin_client.get(reverse("admin:actions_remoteaction_import_from_nexthink")).status_code == 405
    assert RemoteAction.objects.count() == 0


def test_the_import_never_shows_the_client_secret(use_infinity, admin_client, settings):
    settings.NEXTHINK_CLIENT_SECRET = "wrong-but-secret"

    response = admin_client.post(reverse("admin:actions_remoteaction_import_from_nexthink"), follow=True)

    body = response.content.decode()
    assert "Could not read Nexthink" in body and "wrong-but-secret" not in body
    assert (
        json.dumps(requests.get(use_infinity.url + "/_sim/infinity/requests", timeout=5).json()).count(
            "wrong-but-secret"
        )
        == 0
    )


def test_it_keeps_the_names_nexthink_gives_the_outputs(use_infinity):
    import_remote_actions()

    teams = RemoteAction.objects.get(nql_id="#clear_teams_cache")
    assert teams.output_labels == {"CacheSizeMB": "Cache cleared (MB)"}
