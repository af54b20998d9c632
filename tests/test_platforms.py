"""The device's system decides what is offered: the catalog, the action page, its inputs, submit and send."""

import importlib

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse

from actions.catalog.nexthink_import import remote_actions_import
from actions.catalog.parameters import InvalidParams, validate_params
from actions.devices.resolution import resolve_devices_for
from actions.models import ActionParameter, Device, RemoteAction, Run
from actions.nexthink.device_platforms import device_platform
from actions.nexthink.infinity.client import infinity_client_from_settings, parse_remote_action
from actions.platforms import MACOS, UNKNOWN, WINDOWS, fits, offered, uses
from actions.runs.dispatch import run_dispatch
from actions.runs.submit import RunRefused, run_submit
from tests.factories import EMEA, FORM_KEY, make_action, make_device, make_parameter

pytestmark = pytest.mark.django_db
Kind = ActionParameter.Kind


@pytest.fixture
def windows_only(db):
    """A Windows-only action whose one input, a required service name, only Windows' script reads."""
    action = make_action(name="Restart a Windows service", slug="restart-windows-service", runs_on_macos=False)
    make_parameter(action, name="ServiceName", label="Service", required=True, used_by_macos=False)
    return action


@pytest.fixture
def everywhere(db):
    """An action for both systems: a Windows-only input (required) and one both use."""
    action = make_action(name="Repair VPN", slug="repair-vpn")
    make_parameter(action, name="Adapter", label="Network adapter", required=True, used_by_macos=False)
    make_parameter(action, name="Profile", label="VPN profile")
    return action


@pytest.fixture
def mac(alice):
    return make_device(alice, name="MACBOOK-ALICE", platform=MACOS)


@pytest.fixture
def pc(alice):
    return make_device(alice, name="LAPTOP-ALICE", platform=WINDOWS)


def catalog_names(client, **query) -> set[str]:
    response = client.get(reverse("catalog"), query)
    assert response.status_code == 200
    return {entry.name for section in response.context["sections"] for entry in section.actions}


# --- The rules ------------------------------------------------------------------------------------
def test_an_action_fits_the_systems_its_script_exists_for_and_any_unknown_one(windows_only):
    assert fits(windows_only, WINDOWS) and not fits(windows_only, MACOS) and fits(windows_only, UNKNOWN)


def test_an_input_is_used_by_the_systems_nexthink_names_and_by_an_unknown_one(windows_only):
    service = windows_only.parameters.get()
    assert uses(service, WINDOWS) and not uses(service, MACOS) and uses(service, UNKNOWN)


@pytest.mark.parametrize(
    ("systems", "expected"),
    [([], None), ([MACOS, UNKNOWN], None), ([MACOS], {MACOS}), ([WINDOWS, MACOS], {WINDOWS, MACOS})],
)
def test_the_catalog_filters_only_when_every_device_has_a_known_system(systems, expected):
    assert offered(systems) == (None if expected is None else frozenset(expected))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Windows", WINDOWS),
        ("macOS", MACOS),
        ("mac_os", MACOS),
        ("windows", WINDOWS),
        ("Linux", UNKNOWN),
        (None, UNKNOWN),
    ],
)
def test_nexthinks_words_for_a_system_become_the_portals(raw, expected):
    assert device_platform(raw) == expected


# --- From Nexthink ----------------------------------------------------------------------------------
def test_it_reads_the_scripts_systems_and_each_inputs_and_assumes_both_when_not_said():
    listed = parse_remote_action(
        {
            "id": "#restart",
            "scriptInfo": {
                "hasScriptWindows": True,
                "hasScriptMacOs": False,
                "inputs": [{"id": "A", "usedByWindows": True, "usedByMacOs": False}, {"id": "B"}],
            },
        }
    )
    assert (listed.has_script_windows, listed.has_script_macos) == (True, False)
    assert [(i.used_by_windows, i.used_by_macos) for i in listed.inputs] == [(True, False), (True, True)]
    bare = parse_remote_action({"id": "#bare"})
    assert (bare.has_script_windows, bare.has_script_macos) == (True, True)


def test_the_import_from_infinity_stores_the_systems_and_follows_their_change(use_infinity):
    listed = infinity_client_from_settings().remote_actions()  # over HTTP, from the simulator
    remote_actions_import(listed)

    service = RemoteAction.objects.get(nql_id="#restart_windows_service")
    assert (service.runs_on_windows, service.runs_on_macos) == (True, False)
    assert (service.parameters.get().used_by_windows, service.parameters.get().used_by_macos) == (True, False)
    RemoteAction.objects.filter(pk=service.pk).update(runs_on_macos=True)
    report = remote_actions_import(listed)
    assert ("Restart a Windows service (#restart_windows_service)", ["runs on Windows"]) in report.updated
    assert RemoteAction.objects.get(pk=service.pk).runs_on_macos is False


def test_the_simulator_fails_an_action_on_a_device_it_has_no_script_for(use_infinity):
    client = infinity_client_from_settings()
    mac = "0e9d8c7b-6a5f-4e4d-9c3b-2a1f0e9d8c7b"  # MACBOOK-ALICE in the simulator
    accepted = client.execute(
        remote_action_id="#restart_windows_service", devices=[mac], params={"ServiceName": "BITS"}
    )

    use_infinity.advance(10)
    [execution] = client.executions(accepted.request_id, mac)

    assert (execution.status, execution.status_details) == ("failure", "The remote action has no script for macOS.")


def test_nql_gives_each_devices_system(use_infinity, alice, settings):
    settings.DEVICE_RESOLVERS = ["nql"]
    settings.NXQL_USER_NAME_TEMPLATE = "CORP\\{username}"

    devices = resolve_devices_for(alice).devices

    assert {d.name: d.platform for d in devices} == {"LAPTOP-ALICE": WINDOWS, "MACBOOK-ALICE": MACOS}


def test_nxql_gives_each_devices_system(nxql_engines, alice, settings):
    settings.NXQL_PLATFORMS = ["windows", "mac_os"]
    mac_uid = "7b3e9c2d1a4f5e6b8c9d0e1f2a3b4c5d"
    nxql_engines.set_devices(
        nxql_engines.emea,
        [
            {
                "uid": mac_uid,
                "name": "MACBOOK-ALICE",
                "engine": EMEA,
                "platform": "mac_os",
                "last_logged_on_user": "CORP\\alice",
            }
        ],
    )

    devices = resolve_devices_for(alice).devices

    assert [(d.name, d.platform) for d in devices] == [("MACBOOK-ALICE", MACOS)]


def test_the_migration_turns_the_stored_words_into_systems(alice):
    migration = importlib.import_module("actions.migrations.0018_platforms")
    for word in ("Windows", "mac_os", "mobile"):
        Device.objects.filter(pk=make_device(alice, name=word).pk).update(platform=word)

    migration.platforms_as_choices(apps, None)

    assert dict(Device.objects.values_list("name", "platform")) == {
        "Windows": WINDOWS,
        "mac_os": MACOS,
        "mobile": UNKNOWN,
    }


# --- The catalog ------------------------------------------------------------------------------------
def test_a_mac_user_is_not_offered_a_windows_only_action(alice_client, mac, windows_only, everywhere):
    assert catalog_names(alice_client) == {"Repair VPN"}


def test_a_user_with_a_mac_and_a_pc_is_offered_both(alice_client, mac, pc, windows_only, everywhere):
    assert catalog_names(alice_client) == {"Repair VPN", "Restart a Windows service"}


@pytest.mark.parametrize("devices", [[], [UNKNOWN], [MACOS, UNKNOWN]])
def test_no_device_or_one_of_unknown_system_is_offered_everything(alice_client, alice, windows_only, devices):
    for platform in devices:
        make_device(alice, platform=platform)
    assert catalog_names(alice_client) == {"Restart a Windows service"}


def test_the_cached_first_page_is_not_shared_between_systems(client, alice, bob, windows_only):
    make_device(bob, platform=WINDOWS)
    make_device(alice, platform=MACOS)
    client.force_login(bob)
    assert catalog_names(client) == {"Restart a Windows service"}  # cached for bob's groups (none)

    client.force_login(alice)
    assert catalog_names(client) == set()


def test_a_first_visit_finds_the_devices_with_nql_and_asks_once_for_a_user_without_any(
    use_infinity, client, alice, bob, windows_only, settings
):
    settings.DEVICE_RESOLVERS = ["nql"]
    settings.NXQL_USER_NAME_TEMPLATE = "CORP\\{username}"
    settings.NXQL_RECHECK_SECONDS = 60  # as in production (the tests' settings ask every time)
    dana = type(alice).objects.create_user("dana")
    client.force_login(dana)  # MACBOOK-DANA in the simulator, not known to the portal yet

    assert catalog_names(client) == set()
    assert Device.objects.get(owner=dana).platform == MACOS

    client.force_login(type(alice).objects.create_user("erin"))  # no device in Nexthink
    asked = len(use_infinity.requests("/api/v2/nql/execute"))
    assert catalog_names(client) == catalog_names(client) == {"Restart a Windows service"}
    assert len(use_infinity.requests("/api/v2/nql/execute")) == asked + 1


def test_search_and_category_pages_offer_only_what_fits(alice_client, mac, windows_only, everywhere):
    assert catalog_names(alice_client, q="restart") == set()
    listing = alice_client.get(reverse("catalog"), {"category": "other"})
    assert [e.name for e in listing.context["entries"]] == ["Repair VPN"]


# --- The action page and its form -------------------------------------------------------------------
def test_the_action_page_offers_only_the_devices_the_action_runs_on(alice_client, mac, pc, windows_only):
    response = alice_client.get(windows_only.get_absolute_url())

    assert [d.name for d in response.context["form"].devices] == ["LAPTOP-ALICE"]
    assert "Not offered for MACBOOK-ALICE" in response.content.decode()


def test_a_mac_users_action_page_says_the_fix_is_not_for_their_device(alice_client, mac, windows_only):
    response = alice_client.get(windows_only.get_absolute_url())

    html = response.content.decode()
    assert "This fix is not made for your device" in html
    assert "MACBOOK-ALICE is a macOS device" in html
    assert 'id="run-heading"' not in html  # no form


def test_the_form_asks_only_the_inputs_the_devices_system_uses(alice_client, mac, everywhere):
    fields = alice_client.get(everywhere.get_absolute_url()).context["form"].fields
    assert "param_Profile" in fields and "param_Adapter" not in fields


def test_among_several_systems_an_input_says_which_system_asks_for_it(alice_client, mac, pc, everywhere):
    form = alice_client.get(everywhere.get_absolute_url()).context["form"]
    assert "Asked only for your Windows devices." in form.fields["param_Adapter"].help_text
    assert "Asked only" not in form.fields["param_Profile"].help_text


def test_a_run_on_the_mac_neither_needs_nor_sends_the_windows_input(alice_client, mac, pc, everywhere):
    response = alice_client.post(
        everywhere.get_absolute_url(), {"device": mac.uid, "idempotency_key": FORM_KEY, "param_Profile": "corp"}
    )

    assert response.status_code == 302
    assert Run.objects.get().params == {"Profile": "corp"}


# --- Submit and send ----------------------------------------------------------------------------------
def test_submit_refuses_a_device_the_action_cannot_run_on(alice_client, mac, pc, windows_only):
    response = alice_client.post(
        windows_only.get_absolute_url(),
        {"device": mac.uid, "idempotency_key": FORM_KEY, "param_ServiceName": "Spooler"},
    )

    assert response.status_code == 200
    assert not Run.objects.exists()
    assert "IT has it for Windows devices only, and MACBOOK-ALICE is a macOS device" in response.content.decode()


def test_run_submit_refuses_it_for_every_caller(alice, mac, windows_only):
    with pytest.raises(RunRefused, match="cannot run on MACBOOK-ALICE"):
        run_submit(user=alice, action=windows_only, device=mac, params={})


def test_a_mac_run_may_not_carry_an_input_only_windows_uses(everywhere):
    with pytest.raises(InvalidParams, match="has no parameter Adapter"):
        validate_params(everywhere, {"Adapter": "eth0", "Profile": "corp"}, MACOS)


def test_the_send_time_check_refuses_an_action_no_longer_for_the_devices_system(alice, mac, everywhere):
    run = run_submit(user=alice, action=everywhere, device=mac, params={"Profile": "corp"})
    RemoteAction.objects.filter(pk=everywhere.pk).update(runs_on_macos=False)  # IT corrects it meanwhile

    run_dispatch(run_id=run.pk)  # no simulator: a call would fail otherwise

    run.refresh_from_db()
    assert (run.status, run.error_code, run.attempts) == (Run.Status.FAILED, "WRONG_SYSTEM", 1)


def test_it_support_is_offered_only_the_actions_that_run_on_the_device(admin_client, mac, windows_only, everywhere):
    page = admin_client.get(reverse("admin:actions_device_run_action", args=[mac.pk]))
    assert [a.name for a in page.context["actions"]] == ["Repair VPN"]


def test_on_classic_the_admin_sets_the_systems(admin_client, windows_only):
    html = admin_client.get(reverse("admin:actions_remoteaction_change", args=[windows_only.pk])).content.decode()
    assert 'name="runs_on_macos"' in html and 'name="parameters-0-used_by_macos"' in html


def test_the_classic_demo_has_a_mac_user_offered_only_what_runs_on_macos(client, settings):
    settings.DEBUG = True
    call_command("load_demo", stdout=None)
    client.login(username="dana", password="dana-demo")

    assert Device.objects.get(owner__username="dana").platform == MACOS
    offered_to_dana = catalog_names(client)
    assert "Clear Teams cache" in offered_to_dana
    assert not {"Free disk space", "Restart print spooler"} & offered_to_dana
