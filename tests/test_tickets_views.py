"""'Get help from IT' on the run page: own runs only, one ticket however often it is clicked."""

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from actions.models import Run, Ticket
from actions.tasks import create_ticket
from actions.uids import run_reference
from actions.views.tickets import ticket_as_json
from tests.conftest import BROKER_DOWN
from tests.tickets_support import make_run_needing_help

State = Ticket.State


def help_block(run, user) -> str:
    """The run page's "Get help" block, as the lead's run_detail.html includes it."""
    request = RequestFactory().get(run.get_absolute_url())
    request.user = user
    return render_to_string("actions/_get_help.html", {"run": run}, request=request)


def get_help(client, run):
    return client.post(reverse("run_get_help", args=[run.pk]))


def test_one_click_opens_one_incident_and_the_page_shows_its_number(
    client, alice, servicenow, settings, django_capture_on_commit_callbacks
):
    run = make_run_needing_help(alice, status=Run.Status.SENT, fixed=False, comment="Still slow")
    client.force_login(alice)
    assert 'action="/runs/' in help_block(run, alice) and "Get help from IT</button>" in help_block(run, alice)

    with django_capture_on_commit_callbacks() as queued:
        response = get_help(client, run)
    assert response.status_code == 302 and response.url == run.get_absolute_url()
    assert len(queued) == 1
    ticket = Ticket.objects.get(run=run)
    assert ticket.run_url == f"{settings.PORTAL_BASE_URL}/runs/{run.pk}/"
    assert "on its way to the service desk" in help_block(run, alice)
    assert ticket_as_json(run)["state"] == "requested"

    create_ticket(ticket.pk)  # what the worker does with the queued task

    page = help_block(run, alice)
    assert "INC0010001" in page and "Get help from IT</button>" not in page
    assert ticket_as_json(run) | {"state_label": None} == {
        "state": "created",
        "state_label": None,
        "number": "INC0010001",
        "error": "",
        "try_again": False,
        "can_request": False,
    }
    assert len(servicenow.incidents()) == 1


def test_the_tickets_link_comes_from_portal_base_url_never_from_the_host_header(client, alice, servicenow, settings):
    settings.PORTAL_BASE_URL = "https://fixmydevice.corp.example"
    settings.ALLOWED_HOSTS = ["*"]  # a proxy that passes any Host: the header is the attacker's choice
    run = make_run_needing_help(alice)
    client.force_login(alice)

    client.post(reverse("run_get_help", args=[run.pk]), headers={"host": "phish.example"})

    ticket = Ticket.objects.get(run=run)
    assert ticket.run_url == f"https://fixmydevice.corp.example/runs/{run.pk}/"
    create_ticket(ticket.pk)
    [incident] = servicenow.incidents()
    assert ticket.run_url in incident["description"] and "phish.example" not in incident["description"]


@pytest.mark.django_db(transaction=True)  # real commits, so on_commit runs inside the request as in production
def test_with_the_broker_down_the_request_is_saved_and_the_employee_is_told_so(client, alice, servicenow, use_broker):
    run = make_run_needing_help(alice)
    client.force_login(alice)
    use_broker(BROKER_DOWN)

    response = client.post(reverse("run_get_help", args=[run.pk]), follow=True)

    assert response.status_code == 200 and response.redirect_chain[-1][0] == run.get_absolute_url()
    page = response.content.decode()
    assert (
        "Your request for help is saved; it will reach the service desk in a few minutes. "
        "Its ticket number appears on this page once the service desk gives one." in page
    )
    assert "on its way to the service desk." not in page
    ticket = Ticket.objects.get(run=run)
    assert (ticket.state, ticket.enqueued_at) == (State.REQUESTED, None)  # stored; the sweep will send it


def test_clicking_again_queues_nothing_more(client, alice, servicenow, django_capture_on_commit_callbacks):
    run = make_run_needing_help(alice)
    client.force_login(alice)

    with django_capture_on_commit_callbacks() as queued:
        get_help(client, run)
        get_help(client, run)
        get_help(client, run)

    assert len(queued) == 1
    assert Ticket.objects.filter(run=run).count() == 1


def test_another_employee_cannot_escalate_someone_elses_run(client, alice, bob, servicenow):
    run = make_run_needing_help(alice)
    client.force_login(bob)

    assert get_help(client, run).status_code == 404
    assert not Ticket.objects.exists()


def test_asking_for_help_needs_a_post(client, alice, servicenow):
    run = make_run_needing_help(alice)
    client.force_login(alice)
    assert client.get(reverse("run_get_help", args=[run.pk])).status_code == 405


def test_a_failed_ticket_offers_try_again_which_asks_once_more(
    client, alice, servicenow, settings, django_capture_on_commit_callbacks
):
    settings.SERVICENOW_PASSWORD = "wrong"
    run = make_run_needing_help(alice, status=Run.Status.UNKNOWN)
    client.force_login(alice)
    get_help(client, run)
    ticket = Ticket.objects.get(run=run)
    create_ticket(ticket.pk)
    page = help_block(run, alice)
    assert "The portal could not open a ticket for you: ServiceNow: the portal&#x27;s credentials were refused" in page
    assert "Try again</button>" in page
    assert ticket_as_json(run)["try_again"] is True

    settings.SERVICENOW_PASSWORD = "portal-demo"
    with django_capture_on_commit_callbacks() as queued:
        get_help(client, run)
    assert len(queued) == 1
    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert (ticket.state, ticket.number, ticket.attempts) == (State.CREATED, "INC0010001", 1)


@pytest.mark.parametrize(
    ("status", "fixed"),
    [(Run.Status.SENT, None), (Run.Status.SENT, True), (Run.Status.QUEUED, None), (Run.Status.PARTIAL, True)],
)
def test_a_run_that_worked_or_is_still_running_offers_no_help_button(client, alice, servicenow, status, fixed):
    run = make_run_needing_help(alice, status=status, fixed=fixed)
    client.force_login(alice)

    assert help_block(run, alice).strip() == ""
    assert get_help(client, run).status_code == 302
    assert not Ticket.objects.exists()


def test_without_ticketing_the_page_says_to_contact_the_service_desk(client, alice, settings):
    settings.TICKETING = "none"
    settings.SERVICE_DESK_PHONE, settings.SERVICE_DESK_CHAT_URL = "+41 44 000 00 00", "https://chat.example/it"
    settings.SERVICE_DESK_HOURS = "Mon-Fri 8:00-18:00 CET"
    run = make_run_needing_help(alice)
    client.force_login(alice)

    page = help_block(run, alice)
    assert "contact your IT service desk: call" in page and "<button" not in page
    assert 'href="tel:+41440000000"' in page and 'href="https://chat.example/it"' in page and "8:00-18:00 CET" in page
    assert f"Quote the reference <strong>{run_reference(run.pk)}</strong>" in page
    assert get_help(client, run).status_code == 404
    assert ticket_as_json(run) == {"state": None, "can_request": False}


def test_the_action_admin_edits_the_ticket_category_and_group(client, admin_user):
    from tests.factories import make_action

    action = make_action(ticket_category="network", ticket_assignment_group="Network L2")
    client.force_login(admin_user)
    page = client.get(reverse("admin:actions_remoteaction_change", args=[action.pk])).content.decode()
    assert 'name="ticket_category"' in page and 'value="Network L2"' in page


def test_it_staff_see_tickets_read_only_in_admin(client, admin_user, alice):
    run = make_run_needing_help(alice)
    Ticket.objects.create(
        run=run, backend="servicenow", state=State.CREATED, number="INC0010042", requested_at=run.created_at
    )
    client.force_login(admin_user)

    page = client.get(reverse("admin:actions_ticket_changelist")).content.decode()

    assert "INC0010042" in page
    assert client.get(reverse("admin:actions_ticket_add")).status_code == 403
