"""The devices admin: assignments, Engine sync, and IT support's "run an action on this device"."""

import logging

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from actions.models import Device, Engine, Run
from tests.factories import make_action, make_device, make_parameter


@pytest.fixture
def support(db):
    """An IT support agent: staff, may view devices and run an action on any device."""
    user = User.objects.create_user("dave", "dave@corp.example", "dave-pass", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_device"), Permission.objects.get(codename="run_action_on_any_device")
    )
    return user


@pytest.fixture
def viewer(db):
    """Staff who may view devices, without the permission to run actions."""
    user = User.objects.create_user("erin", "erin@corp.example", "erin-pass", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_device"))
    return user


def run_url(device):
    return reverse("admin:actions_device_run_action", args=[device.pk])


def test_support_runs_an_action_on_a_device_for_its_owner(client, support, alice, caplog):
    caplog.set_level(logging.INFO, logger="actions.security")
    device = make_device(alice, name="LAPTOP-ALICE")
    action = make_action(name="Flush DNS")
    make_parameter(action, name="Mode", kind="choice", choices="quick\nfull", required=True)
    client.force_login(support)

    page = client.get(run_url(device), {"action": action.pk})
    response = client.post(
        run_url(device),
        {"action": action.pk, "device": device.uid, "idempotency_key": "s" * 24, "param_Mode": "full"},
    )

    assert page.status_code == 200 and "Run on LAPTOP-ALICE" in page.content.decode()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:actions_device_change", args=[device.pk])
    run = Run.objects.get()
    assert (run.user, run.requested_by, run.device, run.action) == (alice, support, device, action)
    assert run.params == {"Mode": "full"}
    assert "staff_run staff=dave user=alice device=" in caplog.text


def test_support_gets_the_parameters_validated(client, support, alice):
    device = make_device(alice)
    action = make_action()
    make_parameter(action, name="Mode", kind="choice", choices="quick\nfull", required=True)
    client.force_login(support)

    response = client.post(
        run_url(device), {"action": action.pk, "device": device.uid, "idempotency_key": "s" * 24, "param_Mode": "x"}
    )

    assert response.status_code == 200
    assert "Choose one of the options in the list." in response.content.decode()
    assert Run.objects.count() == 0


def test_staff_without_the_permission_cannot_run_actions(client, viewer, alice):
    device = make_device(alice)
    action = make_action()
    client.force_login(viewer)

    response = client.post(run_url(device), {"action": action.pk, "device": device.uid, "idempotency_key": "s" * 24})
    change_page = client.get(reverse("admin:actions_device_change", args=[device.pk])).content.decode()

    assert response.status_code == 403
    assert Run.objects.count() == 0
    assert "Run an action on this device" not in change_page


def test_the_device_page_links_to_running_an_action(client, support, alice):
    device = make_device(alice)
    client.force_login(support)

    page = client.get(reverse("admin:actions_device_change", args=[device.pk])).content.decode()

    assert run_url(device) in page


def test_a_device_without_an_owner_cannot_be_run_on(client, support):
    device = make_device(None)
    action = make_action()
    client.force_login(support)

    response = client.post(run_url(device), {"action": action.pk, "device": device.uid, "idempotency_key": "s" * 24})

    assert response.status_code == 200
    assert "Assign an owner to this device first" in response.content.decode()
    assert Run.objects.count() == 0


def test_a_device_assigned_in_the_admin_is_a_manual_confirmed_assignment(client, admin_user, alice, bob):
    device = make_device(alice, source=Device.Source.NXQL, confirmed_at=None)
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:actions_device_change", args=[device.pk]),
        {
            "uid": device.uid,
            "name": device.name,
            "owner": bob.pk,
            "engine": "",
            "platform": "windows",
            "last_seen_at_0": "",
            "last_seen_at_1": "",
        },
    )

    assert response.status_code == 302
    device.refresh_from_db()
    assert (device.owner, device.source) == (bob, Device.Source.MANUAL)
    assert device.confirmed_at is not None


def test_the_engine_list_can_be_synced_from_the_admin(client, admin_user, use_simulator):
    client.force_login(admin_user)

    listing = client.get(reverse("admin:actions_engine_changelist")).content.decode()
    response = client.post(reverse("admin:actions_engine_sync"))

    assert "Sync from Nexthink now" in listing
    assert response.status_code == 302
    assert Engine.objects.count() == 3
    assert client.get(reverse("admin:actions_engine_sync")).status_code == 405
