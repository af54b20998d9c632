"""In Chromium: a run ends, the employee answers "No" with a comment, asks IT for help, and the
ServiceNow ticket's number appears on the run; another employee can neither answer nor escalate it."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from actions.models import Ticket
from actions.runs.dispatch import run_dispatch
from actions.runs.submit import run_submit
from actions.tasks import create_ticket
from tests.browser_support import sign_in
from tests.factories import EMEA, make_device, make_sim_action

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_no_then_get_help_opens_exactly_one_ticket_with_the_run_attached(
    browser,
    server,
    screenshot,
    alice,
    bob,
    use_simulator,
    servicenow,
):
    action = make_sim_action(slug="clear-teams-cache")
    action.engines.create(database_uid=EMEA, name="engine-emea")
    run = run_submit(user=alice, action=action, device=make_device(alice, name="LAPTOP-ALICE"), params={})
    run_dispatch(run_id=run.pk)  # what the worker does: the run is sent, final
    page = sign_in(browser, server.url, "alice", "alice-pass")

    page.goto(run.get_absolute_url())
    expect(page.get_by_role("heading", name="Did this fix your problem?")).to_be_visible()
    page.get_by_label("Anything to add?").fill("Teams still freezes when I share my screen")
    page.get_by_role("button", name="No, it is not").click()
    get_help = page.get_by_role("button", name="Get help from IT")
    expect(get_help).to_be_visible()
    get_help.click()
    expect(page.locator("#get-help")).to_contain_text("on its way to the service desk")
    ticket = Ticket.objects.get(run=run)
    create_ticket(ticket.pk)  # what the worker does with the queued task
    create_ticket(ticket.pk)  # a redelivered copy: nothing more

    # The page shows the ticket's number by itself, without a reload.
    page.evaluate("() => { window.__marker = 1; }")
    [incident] = servicenow.incidents()
    expect(page.locator("[data-field=ticket_number]")).to_have_text(incident["number"], timeout=30_000)
    assert page.evaluate("() => window.__marker") == 1, "the run page was reloaded"
    assert "Teams still freezes when I share my screen" in incident["description"]
    assert "LAPTOP-ALICE" in incident["description"] and "Clear Teams cache" in incident["short_description"]
    assert str(run.pk) in incident["description"]
    assert Ticket.objects.count() == 1
    screenshot(page, "run-get-help")

    # Bob may not see, answer or escalate Alice's run.
    other = sign_in(browser, server.url, "bob", "bob-pass")
    assert other.goto(run.get_absolute_url()).status == 404
    token = next(c["value"] for c in other.context.cookies() if c["name"] == "csrftoken")
    for name in ("run_feedback", "run_get_help"):
        response = other.request.post(
            reverse(name, args=[run.pk]), form={"fixed": "yes"}, headers={"X-CSRFToken": token}
        )
        assert response.status == 404, name
    assert len(servicenow.incidents()) == 1
