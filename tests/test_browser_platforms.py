"""In Chromium, on Nexthink Infinity: a Mac user is not offered a Windows-only action, and its page says why."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import expect

from actions.catalog.nexthink_import import remote_actions_import
from actions.models import RemoteAction
from actions.nexthink.infinity.client import infinity_client_from_settings
from tests.browser_support import sign_in

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
