"""Shared by the browser tests: Debian's Chromium driven by Playwright, the live server, screenshots, signing in.

Registered in conftest.py (pytest_plugins). Playwright is imported only when a browser test runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.db import connections
from django.urls import reverse

from tests.worker import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Page

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
# Long enough for a cold worker start and the page's polling back-off (at most 5 s between polls).
LIVE_UPDATE_TIMEOUT_MS = 30_000


def chromium_or_skip() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    if found is None:
        reason = "Debian's chromium is not installed (apt-get install chromium; bin/test does it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}, and CI=true requires the browser test")
        pytest.skip(reason)
    return found


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test body are
    # still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
            # While that loop runs, Django hands this thread other connections than its usual ones;
            # close them now, or PostgreSQL refuses to drop the test database at the end.
            connections.close_all()


@pytest.fixture
def server(django_db_setup, live_server):
    """The live server, started after the test database exists, so that it stops (closing its
    connection) before the database is dropped, even when this is the first test of the session."""
    return live_server


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> None:
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)

    return take


def sign_in(browser, base_url: str, username: str, password: str) -> Page:
    """A new browser context (its own cookies), signed in through the real login page."""
    from playwright.sync_api import expect

    page = browser.new_context(base_url=base_url).new_page()
    page.goto(reverse("login"))
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(base_url + reverse("catalog"))
    expect(page.get_by_role("button", name=f"Sign out {username}")).to_be_visible()
    return page
