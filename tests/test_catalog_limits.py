"""The catalog's cards say which actions the employee cannot run now, why and from when (a cooldown,
the daily limit, fair use), in the action page's words, before anyone opens the form; read for the
whole page at once, whatever the number of cards."""

import html
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from actions.models import Run
from actions.runs.outlook import run_outlook
from actions.runs.wording import when_text
from tests.factories import make_action, make_device, submit
from tests.run_states import run_in


def cards(client, **query) -> dict[str, list[str]]:
    """Each card's action name and what it says the employee cannot do now (nothing: [])."""
    page = html.unescape(client.get(reverse("catalog"), query).content.decode())
    found = {}
    for card in page.split('<li class="card action-card">')[1:]:
        card = card.split("</li>")[0]
        name = card.split("</a></h3>")[0].rsplit(">", 1)[1]
        found[name] = [note.split("</p>")[0] for note in card.split("data-not-now>")[1:]]
    return found


@pytest.fixture
def away_from_midnight(settings):
    """A site time zone where today is not about to end: a run a minute ago counts as today's."""
    for zone in ("UTC", "Asia/Tokyo", "America/New_York"):
        if 1 <= timezone.now().astimezone(ZoneInfo(zone)).hour <= 22:
            settings.TIME_ZONE = zone
            return zone
    raise AssertionError("unreachable: those zones are 9 and 5 hours apart")


def test_a_card_says_when_the_cooldown_on_the_employee_s_device_ends(client, alice, settings):
    settings.TIME_ZONE = "Europe/Zurich"
    action = make_action(name="Reset VPN", cooldown_minutes=60)
    make_action(name="Fix printer", cooldown_minutes=60)  # not run: nothing said
    device = make_device(alice, name="LAPTOP-ALICE")
    run = run_in(Run.Status.SENT, user=alice, action=action, device=device)
    run.refresh_from_db()
    client.force_login(alice)

    shown = cards(client)

    again = when_text(run.created_at + timedelta(minutes=60))
    assert again.endswith((" CET", " CEST"))
    expected = f"Not possible right now. “Reset VPN” ran on LAPTOP-ALICE recently. You can run it again from {again}."
    assert shown["Reset VPN"] == [expected]
    assert shown["Fix printer"] == []


def test_a_card_says_the_daily_limit_is_reached_until_tomorrow(client, alice, away_from_midnight):
    action = make_action(name="Clear cache", daily_limit_per_user=2)
    device = make_device(alice)
    for status in (Run.Status.SENT, Run.Status.DONE):
        run_in(status, user=alice, action=action, device=device)
    client.force_login(alice)

    (note,) = cards(client)["Clear cache"]

    tomorrow = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    assert note == (
        "Not possible right now. You have run “Clear cache” 2 times today, the daily limit. "
        f"You can run it again from {when_text(tomorrow)}."
    )


def test_every_card_says_when_fair_use_stops_the_employee(client, alice, settings):
    settings.RUN_MAX_IN_FLIGHT_PER_USER = 1
    action = make_action(name="Reset VPN")
    make_action(name="Fix printer")
    run_in(Run.Status.QUEUED, user=alice, action=action, device=make_device(alice))
    client.force_login(alice)

    shown = cards(client)

    waiting = (
        "Not possible right now. You already have 1 run waiting or being sent. "
        "You can start another as soon as it has finished (see My runs)."
    )
    assert shown == {"Reset VPN": [waiting], "Fix printer": [waiting]}


def test_every_card_says_from_when_the_rate_limit_lets_the_employee_start_another(client, alice, settings):
    settings.RUN_RATE_LIMIT_COUNT, settings.RUN_RATE_LIMIT_WINDOW_SECONDS = 2, 3600
    action = make_action(name="Reset VPN")
    device = make_device(alice)
    runs = [run_in(status, user=alice, action=action, device=device) for status in (Run.Status.SENT, Run.Status.DONE)]
    client.force_login(alice)

    (note,) = cards(client)["Reset VPN"]

    oldest = min(Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("created_at", flat=True))
    assert note == (
        "Not possible right now. You have started 2 runs in the last 60 minutes, the most the portal allows. "
        f"You can start another from {when_text(oldest + timedelta(hours=1))}."
    )


def test_a_card_says_nothing_while_another_of_the_employee_s_devices_is_free(client, alice):
    action = make_action(name="Reset VPN", cooldown_minutes=60)
    run_in(Run.Status.SENT, user=alice, action=action, device=make_device(alice, name="LAPTOP-ALICE"))
    make_device(alice, name="DESKTOP-ALICE")
    client.force_login(alice)

    assert cards(client)["Reset VPN"] == []


def test_the_card_and_the_action_page_say_the_same(client, alice, away_from_midnight):
    action = make_action(name="Reset VPN", cooldown_minutes=30, daily_limit_per_user=1)
    device = make_device(alice, name="LAPTOP-ALICE")
    run_in(Run.Status.SENT, user=alice, action=action, device=device)
    client.force_login(alice)

    (note,) = cards(client)["Reset VPN"]

    assert [
        f"Not possible right now. {text}" for text in run_outlook(user=alice, action=action, devices=[device]).blocked
    ] == [note]


def test_search_and_category_pages_show_the_limits_too(client, alice, settings):
    from actions.models import Category

    category = Category.objects.create(name="Network")
    action = make_action(name="Reset VPN", cooldown_minutes=60, category=category)
    run_in(Run.Status.SENT, user=alice, action=action, device=make_device(alice, name="LAPTOP-ALICE"))
    client.force_login(alice)

    for query in ({"q": "VPN"}, {"category": str(category.pk)}):
        (note,) = cards(client, **query)["Reset VPN"]
        assert note.startswith("Not possible right now. “Reset VPN” ran on LAPTOP-ALICE recently."), query


def test_the_limits_are_read_in_as_many_queries_for_many_cards_as_for_a_few(client, alice):
    device = make_device(alice)

    def limited_and_run(count):
        for _ in range(count):
            submit(alice, make_action(cooldown_minutes=60, daily_limit_per_user=5), device, params={})

    client.force_login(alice)
    limited_and_run(2)
    client.get(reverse("catalog"))  # the catalog's own caches filled
    with CaptureQueriesContext(connection) as few:
        assert sum(bool(notes) for notes in cards(client).values()) == 2
    limited_and_run(10)
    client.get(reverse("catalog"))

    with CaptureQueriesContext(connection) as many:
        assert sum(bool(notes) for notes in cards(client).values()) == 12

    assert len(many) == len(few)
    runs_read = [q["sql"] for q in many if 'FROM "actions_run"' in q["sql"]]
    assert len(runs_read) == 2  # fair use, and the runs that count against the cards' limits
