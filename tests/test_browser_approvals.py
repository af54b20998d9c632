"""In Chromium: alice asks for an action that needs approval, with her reason; the approver gets the
e-mail (file backend), approves in the browser; alice's open page moves from "Waiting for approval"
to the outcome by itself."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import expect

from actions.models import Run
from actions.runs.dispatch import run_dispatch
from actions.runs.notify import approvers_notify
from tests.browser_support import LIVE_UPDATE_TIMEOUT_MS, sign_in
from tests.factories import EMEA, make_device, make_parameter, make_sim_action
from tests.test_browser import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_alice_asks_the_approver_approves_in_the_browser_and_her_page_moves_on(
    browser, server, screenshot, alice, use_simulator, settings, tmp_path
):
    settings.DEVICE_RESOLVERS = ["directory"]
    settings.MAILERS = {
        "default": {"BACKEND": "django.core.mail.backends.filebased.EmailBackend", "OPTIONS": {"file_path": tmp_path}}
    }
    approvers = Group.objects.create(name="Security approvers")
    dan = get_user_model().objects.create_user("dan", "dan@corp.example", "dan-pass")
    dan.groups.add(approvers)
    action = make_sim_action(slug="clear-teams-cache", approver_group=approvers)
    action.engines.create(database_uid=EMEA, name="engine-emea")
    make_parameter(action, name="Mode", label="Mode", required=True)
    make_device(alice, name="LAPTOP-ALICE")

    page = sign_in(browser, server.url, "alice", "alice-pass")
    page.goto(reverse("action_detail", args=[action.slug]))
    page.get_by_label("Mode").fill("full")
    page.get_by_label("Why do you need this?").fill("Teams will not start since this morning")
    page.get_by_role("button", name="Run “Clear Teams cache”").click()
    status = page.locator("[data-field=status_label]")
    expect(status).to_have_text("Waiting for approval")
    assert_accessible(page)  # the reason field's page and the waiting page with its cancel button
    screenshot(page, "run-waiting-for-approval")
    run = Run.objects.get()

    assert approvers_notify(run_id=run.pk) == 1  # what the worker does with the queued task
    [mail] = [path.read_text() for path in tmp_path.iterdir()]
    assert "Teams will not start since this morning" in mail
    link = re.search(r"https?://\S+(/approvals/)", mail)
    assert link is not None

    approver = sign_in(browser, server.url, "dan", "dan-pass")
    approver.goto(link.group(1))
    expect(approver.get_by_role("heading", name="Clear Teams cache for alice")).to_be_visible()
    assert_accessible(approver)
    screenshot(approver, "approvals")
    approver.get_by_label("Comment for alice (optional)").fill("OK, go ahead")
    approver.get_by_role("button", name="Approve").click()
    expect(approver.get_by_text("Approved: “Clear Teams cache” for alice is on its way.")).to_be_visible()
    assert_accessible(approver)

    run_dispatch(run_id=run.pk)  # what the worker does once the run is handed over
    expect(status).to_have_text("Accepted by Nexthink", timeout=LIVE_UPDATE_TIMEOUT_MS)
    screenshot(page, "run-approved-and-sent")
