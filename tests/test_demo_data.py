import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from actions.models import Device, RemoteAction


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
