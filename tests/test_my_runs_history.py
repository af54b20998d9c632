"""My runs is the employee's history with IT: each run's outcome, their answer and their ticket."""

import re

from django.urls import reverse
from django.utils import timezone

from actions.models import Run, Ticket
from actions.runs.wording import STATUS_LABELS
from tests.factories import make_device, make_sim_action
from tests.run_states import run_in

Status = Run.Status


def row_of(page: str, run: Run) -> str:
    start = page.index(run.get_absolute_url())
    return page[start : page.index("</tr>", start)]


def test_each_run_shows_its_outcome_the_answer_and_the_ticket(client, alice, settings):
    settings.TIME_ZONE = "Europe/Zurich"
    action, device = make_sim_action(), make_device(alice)
    fixed = run_in(Status.SENT, user=alice, action=action, device=device)
    Run.objects.filter(pk=fixed.pk).update(fixed=True)
    helped = run_in(Status.FAILED, user=alice, action=action, device=device)
    Ticket.objects.create(
        run=helped, state=Ticket.State.CREATED, backend="servicenow", number="INC0010001", requested_at=timezone.now()
    )
    waiting = run_in(Status.UNKNOWN, user=alice, action=action, device=device)
    Ticket.objects.create(run=waiting, backend="servicenow", requested_at=timezone.now())
    client.force_login(alice)

    page = client.get(reverse("my_runs")).content.decode()

    assert re.search(r">Accepted by Nexthink<.*>Yes<", row_of(page, fixed), re.S)
    assert "Not sent" in row_of(page, helped) and "INC0010001" in row_of(page, helped)
    assert "Result unknown" in row_of(page, waiting) and "Being opened" in row_of(page, waiting)
    # Every time with its zone (Django's "P" leaves out ":00" and says "noon" and "midnight").
    assert re.search(r"(\d{1,2}(:\d\d)? [ap]\.m\.|noon|midnight) CES?T", row_of(page, fixed))


def offered(client) -> list[str]:
    select = client.get(reverse("my_runs")).content.decode().split('id="status-filter"')[1].split("</select>")[0]
    return re.findall(r'<option value="(\w*)"', select)


def test_the_status_filter_offers_only_the_statuses_of_this_platform_in_plain_words(client, alice, settings):
    client.force_login(alice)

    settings.NEXTHINK_PLATFORM = "classic"
    classic = offered(client)
    settings.NEXTHINK_PLATFORM = "infinity"
    infinity = offered(client)

    assert "sent" in classic and "partial" in classic and "following" not in classic and "done" not in classic
    assert "done" in infinity and "expired" in infinity and "sent" not in infinity and "partial" not in infinity
    assert "failed" in classic and "failed" in infinity
    page = client.get(reverse("my_runs")).content.decode()
    assert f">{STATUS_LABELS[Status.DONE]}</option>" in page and ">Done on the device<" not in page
