from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from actions.models import Device, RemoteAction, Run


def test_it_loads_the_demo_users_devices_and_catalog_twice_without_change(db, settings):
    settings.DEBUG = True

    call_command("load_demo", stdout=None)
    call_command("load_demo", stdout=None)

    assert authenticate(username="alice", password="alice-demo") is not None
    assert authenticate(username="admin", password="admin-demo").is_superuser
    assert list(Device.objects.filter(owner__username="bob").order_by("name").values_list("name", flat=True)) == [
        "DESKTOP-BOB",
        "LAPTOP-BOB",
    ]
    assert RemoteAction.objects.filter(enabled=True).count() == 5


def test_it_refuses_outside_the_demo(db, settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="demo only"):
        call_command("load_demo")
    assert not RemoteAction.objects.exists()


def test_a_restarted_demo_keeps_what_a_curator_changed(db, settings):
    settings.DEBUG = True
    call_command("load_demo", stdout=None)
    teams = RemoteAction.objects.get(slug="clear-teams-cache")
    teams.name, teams.enabled = "Clear Teams cache (IT's version)", False
    teams.save()
    teams.parameters.all().delete()
    alice = User.objects.get(username="alice")
    alice.set_password("changed-by-alice")
    alice.save()

    call_command("load_demo", stdout=None)

    teams.refresh_from_db()
    assert (teams.name, teams.enabled, teams.parameters.count()) == ("Clear Teams cache (IT's version)", False, 0)
    assert authenticate(username="alice", password="changed-by-alice") is not None


def test_a_spare_simulator_action_curated_in_admin_runs_end_to_end(db, settings, alice, use_simulator, sim_requests):
    from actions.runs.dispatch import run_dispatch
    from actions.runs.submit import run_submit
    from tests.factories import make_action, make_device

    spare = make_action(name="Restart Windows Explorer", nexthink_uid="6c1e8f2a-3b4d-4e5f-9a0b-1c2d3e4f5a60")
    run = run_submit(user=alice, action=spare, device=make_device(alice), params={})

    run_dispatch(run_id=run.pk)

    run.refresh_from_db()
    assert run.status in (Run.Status.SENT, Run.Status.PARTIAL)
    assert sim_requests()[0]["body"]["remoteActionUid"] == "6c1e8f2a-3b4d-4e5f-9a0b-1c2d3e4f5a60"


def test_the_infinity_demo_loads_users_and_enabled_actions_twice_without_change(db, settings):
    settings.DEBUG, settings.NEXTHINK_PLATFORM = True, "infinity"

    call_command("load_demo", stdout=None)
    teams = RemoteAction.objects.get(nql_id="#clear_teams_cache")
    teams.name = "Teams, curated"
    teams.save()
    call_command("load_demo", stdout=None)

    assert authenticate(username="bob", password="bob-demo") is not None
    assert RemoteAction.objects.get(nql_id="#clear_teams_cache").name == "Teams, curated"
    assert RemoteAction.objects.filter(enabled=True).exclude(nql_id="").count() >= 3


def test_a_database_shared_by_both_demos_is_pointed_out(db, settings):
    settings.DEBUG = True
    quiet = StringIO()
    call_command("load_demo", stdout=quiet, stderr=quiet)
    assert "also holds" not in quiet.getvalue()
    settings.NEXTHINK_PLATFORM = "infinity"
    warning = StringIO()

    call_command("load_demo", stdout=StringIO(), stderr=warning)

    assert "also holds 5 action(s) of the classic demo" in warning.getvalue()


def test_the_demo_ships_a_chat_assistant_client_with_the_published_token(db, settings, client):
    from actions.apiclients import client_for_token
    from simulators.management.commands.load_demo import DEMO_API_TOKEN

    settings.DEBUG = True
    call_command("load_demo", stdout=StringIO())
    call_command("load_demo", stdout=StringIO())  # twice: still one client
    demo = client_for_token(DEMO_API_TOKEN)
    assert demo is not None and "devices:any" not in demo.scopes
    response = client.get("/api/v1/devices?employee=bob", HTTP_AUTHORIZATION=f"Bearer {DEMO_API_TOKEN}")
    assert sorted(d["name"] for d in response.json()["devices"]) == ["DESKTOP-BOB", "LAPTOP-BOB"]
