"""The catalog's search in Chromium: a pasted long search is not cut by the browser, a typo finds the
action, and a search with no result offers IT's help with the words typed."""

import pytest
from playwright.sync_api import expect

from tests.browser_support import sign_in
from tests.factories import make_action

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_employee_finds_an_action_with_a_typo_or_is_offered_help(browser, server, alice, settings, screenshot):
    settings.SERVICE_DESK_PHONE = "+1 555 0100"
    make_action(name="Restart print spooler", slug="restart-print-spooler", keywords="printer, print queue")
    page = sign_in(browser, server.url, "alice", "alice-pass")
    box = page.get_by_label("Search actions")

    box.fill("printr")
    box.press("Enter")
    expect(page.get_by_role("link", name="Restart print spooler")).to_be_visible()

    typed = "scanner jammed " + "x" * 100  # pasted: the browser keeps it all, the page says what it used
    box = page.get_by_label("Search actions")
    box.fill(typed)
    assert box.input_value() == typed
    box.press("Enter")
    expect(page.get_by_text("Your search was too long")).to_be_visible()
    expect(page.get_by_role("heading", name="Get help from IT")).to_be_visible()
    expect(page.locator("[data-search-words]")).to_contain_text("scanner jammed")
    expect(page.locator("#get-help").get_by_role("link", name="+1 555 0100")).to_be_visible()
    screenshot(page, "catalog-search-no-result")
