"""In Chromium, on Nexthink Infinity: the employee's devices come from NQL, the run is sent, and the
page turns to "Done on the device" with the action's outputs as the follow-up reads them."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from actions.models import Run
from actions.runs.dispatch import run_dispatch
from actions.runs.follow_up import runs_follow_up
from tests.browser_support import LIVE_UPDATE_TIMEOUT_MS, sign_in
from tests.factories import make_action
from tests.worker import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_infinity_run_reaches_done_on_the_device_with_its_outputs(
    browser,
    server,
    screenshot,
    alice,
    use_infinity,
    settings,
):
    settings.DEVICE_RESOLVERS = ["nql"]
    settings.NXQL_USER_NAME_TEMPLATE = "CORP\\{username}"
    action = make_action(
        name="Clear Teams cache",
        slug="clear-teams-cache",
        nql_id="#clear_teams_cache",
        output_labels={"CacheSizeMB": "Cache cleared (MB)"},  # as import_remote_actions sets them
    )
    page = sign_in(browser, server.url, "alice", "alice-pass")

    page.goto(reverse("action_detail", args=[action.slug]))
    page.get_by_label(re.compile("LAPTOP-ALICE")).check()  # her two devices, as Nexthink's NQL lists them
    page.get_by_role("button", name="Run “Clear Teams cache”").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}/$"))
    run = Run.objects.get()
    run_dispatch(run_id=run.pk)  # what the worker does
    status = page.locator("#run-status [data-field=status_label]")
    expect(status).to_have_text("Waiting for your device", timeout=LIVE_UPDATE_TIMEOUT_MS)

    def done() -> bool:
        use_infinity.advance(5)  # the simulated device takes the action and finishes it
        Run.objects.filter(pk=run.pk, status=Run.Status.FOLLOWING).update(
            next_check_at=timezone.now() - timedelta(hours=1)
        )
        runs_follow_up()  # what beat and a worker do every few seconds
        return Run.objects.get(pk=run.pk).status == Run.Status.DONE

    wait_for(done, timeout=30)
    expect(status).to_have_text("Done on your device", timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(page.locator("#run-status [data-field=summary]")).to_contain_text("Your device ran the action successfully.")
    expect(page.locator("#device-outputs")).to_contain_text("Cache cleared (MB)")
    expect(page.locator("#device-outputs")).to_contain_text("812")
    expect(page.get_by_role("heading", name="Did this fix your problem?")).to_be_visible()
    screenshot(page, "run-infinity-done")
