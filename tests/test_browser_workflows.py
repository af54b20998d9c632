"""In Chromium, on Nexthink Infinity: an employee runs a workflow from the catalog, and the page turns to
"Done on the device" with the workflow's outcome as the follow-up reads it."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from actions.models import RemoteAction, Run
from actions.runs.dispatch import run_dispatch
from actions.runs.follow_up import runs_follow_up
from tests.browser_support import LIVE_UPDATE_TIMEOUT_MS, sign_in
from tests.factories import make_action
from tests.worker import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_workflow_runs_to_its_outcome(browser, server, screenshot, alice, use_infinity, settings):
    settings.DEVICE_RESOLVERS = ["nql"]
    settings.NXQL_USER_NAME_TEMPLATE = "CORP\\{username}"
    vpn = make_action(
        kind=RemoteAction.Kind.WORKFLOW,
        name="Fix my VPN connection",
        slug="fix-my-vpn",
        nql_id="#fix_vpn_connection",
        output_labels={"outcome": "Outcome", "outcome_details": "Outcome details"},  # as the import sets them
    )
    page = sign_in(browser, server.url, "alice", "alice-pass")

    page.goto(reverse("action_detail", args=[vpn.slug]))
    page.get_by_label(re.compile("LAPTOP-ALICE")).check()
    page.get_by_role("button", name="Run “Fix my VPN connection”").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}/$"))
    run = Run.objects.get()
    run_dispatch(run_id=run.pk)  # what the worker does: the workflow execute API, not the remote action one
    status = page.locator("#run-status [data-field=status_label]")
    expect(status).to_have_text("Waiting for your device", timeout=LIVE_UPDATE_TIMEOUT_MS)

    def done() -> bool:
        use_infinity.advance(5)  # the simulated workflow runs its steps and ends
        Run.objects.filter(pk=run.pk, status=Run.Status.FOLLOWING).update(
            next_check_at=timezone.now() - timedelta(hours=1)
        )
        runs_follow_up()
        return Run.objects.get(pk=run.pk).status == Run.Status.DONE

    wait_for(done, timeout=30)
    expect(status).to_have_text("Done on your device", timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(page.locator("#device-outputs")).to_contain_text("Outcome")
    expect(page.locator("#device-outputs")).to_contain_text("resolved")
    assert len(use_infinity.requests("/api/v2/workflows/execute")) == 1
    screenshot(page, "run-workflow-done")
