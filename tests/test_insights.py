"""Admin → Insights: the figures on known data, the chart, sorting, the CSV export and who may see it."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from actions import insights
from actions.models import Run, Ticket
from tests.factories import make_action

S = Run.Status
URL = reverse("admin:actions_runinsight_changelist")


def make_run(user, action, status, *, fixed=None, ticket=False, days_ago=0, hours_ago=0):
    run = Run.objects.create(
        user=user,
        action=action,
        action_name=action.name,
        action_uid=action.nexthink_uid,
        device_uid="0" * 32,
        timeout_seconds=60,
        status=status,
        fixed=fixed,
    )
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(days=days_ago, hours=hours_ago))
    if ticket:
        Ticket.objects.create(run=run, backend="servicenow", requested_at=timezone.now(), state="created")
    return run


@pytest.fixture
def known_runs(alice):
    cache = make_action(name="Clear cache")
    wifi = make_action(name="Reset Wi-Fi")
    # Each run more than 24 h from alice's others of the action: each its own problem.
    make_run(alice, cache, S.SENT, fixed=True, days_ago=1)  # fixed: a ticket avoided
    make_run(alice, cache, S.SENT, fixed=False, ticket=True, days_ago=5)  # "no", then help
    make_run(alice, cache, S.SENT, days_ago=7)  # not answered, no help: avoided
    make_run(alice, cache, S.FAILED, ticket=True, days_ago=9)
    make_run(alice, cache, S.PARTIAL, fixed=True, days_ago=3)
    make_run(alice, cache, S.UNKNOWN, days_ago=11)
    make_run(alice, cache, S.SENT, fixed=True, days_ago=40)  # outside the default 30 days
    make_run(alice, wifi, S.FAILED, days_ago=0)
    make_run(alice, wifi, S.QUEUED, days_ago=0)
    return cache, wifi


def test_it_counts_each_figure_per_action_on_known_data(known_runs, django_assert_num_queries):
    with django_assert_num_queries(2):  # the per-action counts; the problems
        rows = {row.name: row for row in insights.figures_by_action(insights.default_period())}

    cache, wifi = rows["Clear cache"], rows["Reset Wi-Fi"]
    assert (cache.runs, cache.accepted, cache.ran, cache.answered, cache.fixed, cache.not_fixed) == (6, 4, 0, 3, 2, 1)
    assert (cache.escalated, cache.problems, cache.avoided) == (2, 6, 3)
    assert (cache.accepted_share, cache.fixed_share, cache.escalated_share) == (4 / 6, 2 / 3, 2 / 6)
    assert (wifi.runs, wifi.accepted, wifi.answered, wifi.escalated, wifi.problems, wifi.avoided) == (2, 0, 0, 0, 1, 0)
    assert wifi.fixed_share is None  # nobody answered: no share, not 0 %
    total = insights.totals(list(rows.values()))
    assert (total.runs, total.accepted, total.escalated, total.problems, total.avoided) == (8, 4, 2, 7, 3)


def test_quick_runs_of_one_action_by_one_employee_are_one_problem(alice, bob):
    cache, wifi = make_action(name="Clear cache"), make_action(name="Reset Wi-Fi")
    for minutes in range(8):  # eight tries in a row: one problem, one ticket avoided at most
        make_run(alice, cache, S.SENT, hours_ago=2 + minutes / 60)
    make_run(bob, cache, S.SENT, hours_ago=2)  # another employee: another problem
    make_run(alice, wifi, S.SENT, hours_ago=2)  # another action: another problem
    make_run(alice, cache, S.SENT, days_ago=3)  # 3 days earlier: another problem...
    make_run(alice, cache, S.SENT, days_ago=3, hours_ago=-2, ticket=True)  # ...that ended with a ticket
    make_run(alice, cache, S.SENT, fixed=True, days_ago=6)  # fixed, then tried again 20 h later...
    make_run(alice, cache, S.FAILED, days_ago=5, hours_ago=4)  # ...and it failed: not avoided
    make_run(alice, cache, S.SENT, days_ago=8, ticket=True)  # help asked, then tried again...
    make_run(alice, cache, S.DONE, days_ago=8, hours_ago=-1)  # ...and done: the ticket was not avoided
    make_run(alice, cache, S.SENT, fixed=False, days_ago=10)  # answered "no": not avoided

    rows = {row.name: row for row in insights.figures_by_action(insights.default_period())}

    assert (rows["Clear cache"].runs, rows["Clear cache"].problems, rows["Clear cache"].avoided) == (16, 6, 2)
    assert rows["Clear cache"].ran == 1
    assert (rows["Reset Wi-Fi"].problems, rows["Reset Wi-Fi"].avoided) == (1, 1)


def test_a_longer_period_takes_older_runs_in(known_runs):
    today = timezone.localdate()
    rows = insights.figures_by_action(insights.Period(today - timedelta(days=60), today))
    assert {row.name: row.runs for row in rows} == {"Clear cache": 7, "Reset Wi-Fi": 2}


def test_runs_per_day_has_every_day_with_its_outcomes(known_runs, django_assert_num_queries):
    period = insights.default_period()
    with django_assert_num_queries(1):
        days = insights.runs_per_day(period)

    assert len(days) == 30 and days[-1]["day"] == timezone.localdate()
    by_day = {d["day"]: d for d in days}
    today = timezone.localdate()
    assert by_day[today] | {"day": None} == {
        "day": None,
        "accepted": 0,
        "done": 0,
        "device_failed": 0,
        "failed": 1,
        "unknown": 0,
        "in_flight": 1,
        "not_approved": 0,
    }
    assert by_day[today - timedelta(days=3)]["accepted"] == 1 and by_day[today - timedelta(days=11)]["unknown"] == 1
    assert by_day[today - timedelta(days=10)] | {"day": None} == {
        "day": None,
        "accepted": 0,
        "done": 0,
        "device_failed": 0,
        "failed": 0,
        "unknown": 0,
        "in_flight": 0,
        "not_approved": 0,
    }


@pytest.fixture
def it_viewer(db):
    user = User.objects.create_user("ivan", "ivan@corp.example", "ivan-pass", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_run", content_type__app_label="actions"))
    return user


def test_staff_who_may_view_runs_see_the_page_with_table_and_svg_chart(client, it_viewer, known_runs):
    client.force_login(it_viewer)
    response = client.get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Clear cache" in page and "67%" in page  # fixed: 2 of 3 answered
    assert "Accepted by Nexthink" in page and "Reached the device" not in page  # Classic's sent is only that
    assert "Ran on the device</a>" not in page  # Classic never says what the device did
    assert "Counted per problem, not per run" in page
    assert "<svg" in page and 'fill="#c62828"' in page
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert "style=" not in svg and "<script" not in svg  # the CSP allows neither inline
    assert response.headers["Content-Security-Policy"].count("unsafe-inline") == 0
    assert "Insights" in client.get(reverse("admin:index")).content.decode()


def test_staff_without_the_run_permission_are_refused(client, db):
    user = User.objects.create_user("dora", "dora@corp.example", "pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_device", content_type__app_label="actions"))
    client.force_login(user)
    assert client.get(URL).status_code == 403


def test_an_employee_is_sent_to_the_admin_login(client, alice):
    client.force_login(alice)
    assert client.get(URL).status_code == 302


def test_the_table_sorts_by_the_column_asked_for(client, it_viewer, known_runs):
    client.force_login(it_viewer)

    def order(o):
        rows = client.get(URL, {"o": o}).context["rows"]
        return [row.name for row in rows]

    assert order("-runs") == ["Clear cache", "Reset Wi-Fi"]
    assert order("runs") == ["Reset Wi-Fi", "Clear cache"]
    assert order("-name") == ["Reset Wi-Fi", "Clear cache"]
    assert order("nonsense") == ["Clear cache", "Reset Wi-Fi"]  # the default: most runs first


def test_the_csv_export_has_one_line_per_action_and_a_total(client, it_viewer, known_runs):
    cache, _ = known_runs
    cache.name = "=HYPERLINK(1)"
    cache.save()
    client.force_login(it_viewer)

    response = client.get(URL, {"format": "csv"})

    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines[0][:3] == ["action", "runs", "accepted_by_nexthink"]
    assert lines[1] == ["'=HYPERLINK(1)", "6", "4", "0.6667", "0", "3", "2", "0.6667", "1", "2", "0.3333", "6", "3"]
    assert lines[-1][:2] == ["All actions", "8"]


def test_a_date_range_the_wrong_way_round_says_so(client, it_viewer, known_runs):
    client.force_login(it_viewer)
    response = client.get(URL, {"start": "2026-05-10", "end": "2026-05-01"})
    assert "The start must not be after the end." in response.content.decode()
    assert response.context["period"] == insights.default_period()


def test_every_status_is_counted_under_one_outcome_of_the_chart():
    from django.db.models import Q

    from actions.insights import OUTCOMES
    from actions.models import Run

    covered = []
    for _key, _label, _colour, condition in OUTCOMES:
        for child in condition.children:
            _lookup, value = child
            covered.extend(value if isinstance(value, list) else [value])
    assert sorted(covered) == sorted(Run.Status.values)
    assert all(isinstance(condition, Q) for *_, condition in OUTCOMES)


def test_on_infinity_the_page_says_what_ran_on_the_device(client, it_viewer, known_runs, alice, settings):
    settings.NEXTHINK_PLATFORM = "infinity"
    make_run(alice, known_runs[1], S.DONE, days_ago=1)
    client.force_login(it_viewer)

    page = client.get(URL).content.decode()

    assert "Ran on the device</a>" in page and "Runs the device reports it ran" in page
