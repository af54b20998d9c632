"""In Chromium: a Mac user is not offered a Windows-only action (Infinity, NQL), and the form shows only the
inputs the chosen device's system uses."""

import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import expect

from actions.catalog.nexthink_import import remote_actions_import
from actions.models import RemoteAction, Run
from actions.nexthink.infinity.client import infinity_client_from_settings
from actions.platforms import MACOS, WINDOWS
from tests.browser_support import sign_in
from tests.factories import make_action, make_device, make_parameter

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_mac_user_is_not_offered_a_windows_only_action(browser, server, screenshot, use_infinity, settings):
    settings.DEVICE_RESOLVERS = ["nql"]
    settings.NXQL_USER_NAME_TEMPLATE = "CORP\\{username}"
    remote_actions_import(infinity_client_from_settings().remote_actions())  # as the admin's import button
    RemoteAction.objects.update(enabled=True)
    User.objects.create_user("dana", "dana@corp.example", "dana-pass")  # MACBOOK-DANA, in Nexthink's NQL

    page = sign_in(browser, server.url, "dana", "dana-pass")

    catalog = page.locator("main")
    expect(catalog.get_by_role("link", name="Clear Teams cache")).to_be_visible()
    expect(catalog).not_to_contain_text("Restart a Windows service")
    expect(catalog).not_to_contain_text("Free disk space")
    screenshot(page, "catalog-mac-user")

    page.goto(reverse("action_detail", args=[RemoteAction.objects.get(nql_id="#restart_windows_service").slug]))
    expect(page.get_by_role("heading", name="This fix is not made for your device")).to_be_visible()
    expect(page.locator("main")).to_contain_text("MACBOOK-DANA is a macOS device")
    expect(page.get_by_role("button", name="Run “Restart a Windows service”")).to_have_count(0)


def test_the_form_shows_only_the_inputs_of_the_chosen_devices_system(browser, server, alice):
    action = make_action(name="Repair VPN", slug="repair-vpn")
    make_parameter(action, name="Adapter", label="Network adapter", required=True, used_by_macos=False)
    make_device(alice, name="LAPTOP-ALICE", platform=WINDOWS)
    mac = make_device(alice, name="MACBOOK-ALICE", platform=MACOS)
    page = sign_in(browser, server.url, "alice", "alice-pass")
    page.goto(action.get_absolute_url())
    adapter = page.get_by_label("Network adapter")

    page.get_by_label(re.compile("MACBOOK-ALICE")).check()
    expect(adapter).to_be_hidden()
    page.get_by_label(re.compile("LAPTOP-ALICE")).check()
    expect(adapter).to_be_visible()
    page.get_by_label(re.compile("MACBOOK-ALICE")).check()
    page.get_by_role("button", name="Run “Repair VPN”").click()

    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}/$"))
    assert (Run.objects.get().device, Run.objects.get().params) == (mac, {})
