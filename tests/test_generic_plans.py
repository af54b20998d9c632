"""On PostgreSQL, each hot statement reads its index in a *generic* plan, as production may run it.

With the pool, parameters are bound on the server and a statement is prepared after a few runs on a
connection; PostgreSQL may then plan it once for any values (actions/sql.py). Here every statement is
planned that way from its first run (`plan_cache_mode = force_generic_plan`), sequential scans are
priced out (a test's small table would be read whole whatever its indexes), statistics say what
production's say (most runs final, none in flight), and auto_explain hands back each statement's plan.
Each test runs the real code (a submit, a reaper pass, the admin's search) and reads its plan.

The plans: PostgreSQL only, CI's second run (DATABASE_URL=postgres://...); skipped on SQLite. The
rules of the two helpers (actions/sql.py), at the end, hold on both databases.
"""

import re
import uuid

import pytest
from django.db import connection
from django.urls import reverse

from actions.insights import runs_in_flight_now
from actions.models import Run, Ticket
from actions.runs.follow_up import runs_follow_up
from actions.runs.notify import runs_notify
from actions.runs.reaper import runs_reap
from actions.runs.selectors import cursor_of
from actions.sql import Constant, after_prefix, starts_with
from tests.factories import make_device, submit

pytestmark = pytest.mark.django_db


class Plans:
    def __init__(self):
        self.seen: list[tuple[str, str]] = []  # (query, plan) of each statement, in order

    def notice(self, diagnostic) -> None:
        head, _, plan = (diagnostic.message_primary or "").partition("\n")
        query, _, plan = plan.partition("\n")
        if head.startswith("duration:") and query.startswith("Query Text: "):
            self.seen.append((query.removeprefix("Query Text: "), plan))

    def of(self, *fragments: str) -> str:
        """The plan of the one statement on runs whose SQL holds every fragment."""
        self.flush()
        found = [plan for query, plan in self.seen if '"actions_run"' in query and all(f in query for f in fragments)]
        assert len(found) == 1, f"{len(found)} statements hold {fragments}: {[q for q, _ in self.seen]}"
        return found[0]

    def all_of(self, *fragments: str) -> list[str]:
        """The plans of every statement on runs whose SQL holds every fragment."""
        self.flush()
        return [plan for query, plan in self.seen if '"actions_run"' in query and all(f in query for f in fragments)]

    def flush(self) -> None:
        """The last statement's plan comes when its portal closes, at the next statement: run one."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    def clear(self) -> None:
        self.flush()
        self.seen.clear()


@pytest.fixture
def plans(alice, bob):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's generic plans: CI's second run (DATABASE_URL=postgres://...)")
    # Statistics as production's: thousands of final runs, a heavy employee among them, none in flight.
    device = make_device(bob)
    Run.objects.bulk_create(
        Run(
            user=alice if n % 4 == 0 else bob,
            device=device,
            action_name="Clear Teams cache",
            action_uid=uuid.uuid4(),
            device_uid=device.uid,
            device_name=device.name,
            timeout_seconds=60,
            status=Run.Status.SENT if n % 3 else Run.Status.FAILED,
        )
        for n in range(2000)
    )
    seen = Plans()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE actions_run")
        cursor.execute("LOAD 'auto_explain'")
        cursor.execute("SET auto_explain.log_min_duration = 0")
        cursor.execute("SET auto_explain.log_level = notice")  # to this client, not the server's log
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute("SET enable_seqscan = off")
    connection.connection.add_notice_handler(seen.notice)
    yield seen
    connection.connection.remove_notice_handler(seen.notice)
    with connection.cursor() as cursor:
        for setting in ("auto_explain.log_min_duration", "plan_cache_mode", "enable_seqscan"):
            cursor.execute(f"RESET {setting}")


def index_scans(plan: str) -> set[str]:
    return set(re.findall(r"Index (?:Only )?Scan(?: Backward)? (?:using|on) (\w+)", plan))


def test_the_one_time_key_is_looked_up_in_its_partial_unique_index(plans, alice, laptop, action):
    submit(alice, action, laptop, idempotency_key="k" * 32)

    plan = plans.of('"idempotency_key" =')
    assert index_scans(plan) == {"unique_idempotency_key_per_user"}, plan


def test_fair_use_counts_in_flight_runs_from_the_status_index(plans, alice, laptop, action):
    submit(alice, action, laptop)

    plan = plans.of('COUNT("actions_run"."id") FILTER')
    # The in-flight statuses as PostgreSQL sees them: values it knows to be rare, read from the
    # status index; a parameter there would be estimated as common as "sent".
    assert "'{queued,retrying,sending,waiting_approval}'" in plan, plan
    assert "actions_run_status_031cdb_idx" in index_scans(plan), plan


def test_every_reaper_read_is_an_index_range_of_in_flight_runs(plans):
    runs_reap()
    plans.flush()

    reads = [plan for query, plan in plans.seen if query.startswith("SELECT") and '"actions_run"' in query]
    assert len(reads) >= 4
    for plan in reads:
        assert "Seq Scan" not in plan, plan
        if index_scans(plan) in ({"run_follow_up_due"}, {"run_approval_due"}):
            continue  # the partial indexes of following runs and of waiting requests: nothing else in them
        if "run_unseen_end" in index_scans(plan):
            continue  # the e-mail pass: the partial index of runs that ended unseen (the test below)
        assert index_scans(plan) == {"actions_run_status_031cdb_idx"}, plan
        # The statuses as literals PostgreSQL knows to be rare, never parameters it guesses common.
        assert re.search(r"Index Cond: .*\(status\)::text = (ANY \()?'", plan), plan
        assert not re.search(r"\(status\)::text = (ANY \(\(ARRAY\[)?\$", plan), plan


def test_the_e_mail_pass_reads_the_runs_that_ended_unseen_from_their_partial_index(plans):
    runs_notify()

    plan = plans.of('"notified_at" IS NULL')
    assert "Seq Scan" not in plan, plan
    assert "run_unseen_end" in index_scans(plan), plan


def test_the_scrape_counts_runs_in_flight_from_the_status_index(plans):
    runs_in_flight_now()

    plan = plans.of("MIN(")
    assert index_scans(plan) == {"actions_run_status_031cdb_idx"}, plan
    assert not re.search(r"\(status\)::text = (ANY \(\(ARRAY\[)?\$", plan), plan


def test_the_follow_up_finds_due_runs_in_its_partial_index(plans):
    runs_follow_up()

    assert index_scans(plans.of('"next_check_at" <=')) == {"run_follow_up_due"}


def test_an_admin_search_by_a_name_s_start_reads_the_name_indexes(plans, client, admin_user):
    client.force_login(admin_user)
    plans.clear()

    response = client.get(reverse("admin:actions_run_changelist"), {"q": "LAPTOP-4"})

    assert response.status_code == 200
    assert index_scans(plans.of('"device_name" ~>=~')) == {"run_device_name_created"}
    assert index_scans(plans.of('"action_name" ~>=~')) == {"run_action_name_created"}


def test_an_admin_search_by_a_name_s_start_that_matches_reads_its_runs_from_the_name_index(plans, client, admin_user):
    client.force_login(admin_user)
    name = Run.objects.values_list("device_name", flat=True).first()
    plans.clear()

    response = client.get(reverse("admin:actions_run_changelist"), {"q": name[:-1]})  # no device named so

    assert response.status_code == 200 and len(response.context["cl"].result_list) == 100
    read = plans.all_of('"device_name" ~>=~')
    # Its probe, the capped count and the page: each reads the name's runs from the name index, and
    # never the whole table in date order (255 ms at 10^6 runs for a bare range with LIMIT 100).
    assert len(read) == 3, read
    for plan in read:
        assert "run_device_name_created" in index_scans(plan), plan
        assert not index_scans(plan) & {"actions_run_created_at_09ef1c86", "run_created_action_idx"}, plan


def test_the_admin_counts_a_heavy_user_s_runs_without_sorting_them(plans, client, admin_user, alice):
    client.force_login(admin_user)

    response = client.get(reverse("admin:actions_run_changelist"), {"q": "alice"})

    assert response.status_code == 200
    count = plans.of("SELECT COUNT(*)")
    assert "Sort" not in count, count  # any 10,000 rows will do, straight from the index


def test_an_older_page_of_my_runs_starts_reading_the_index_at_its_cursor(plans, alice_client, alice):
    oldest = list(Run.objects.filter(user=alice).order_by("created_at", "id")[:21])

    response = alice_client.get(reverse("my_runs"), {"before": cursor_of(oldest[-1])})

    assert response.status_code == 200
    plan = plans.of('"created_at" <')
    # An index read from the cursor on, not a filter over all of a heavy employee's runs.
    assert re.search(r"Index Cond: .*created_at <= \$\d+", plan), plan


# --- actions/sql.py, on both databases ------------------------------------------------------------
def test_a_constant_is_a_plain_word_or_an_integer_never_text_to_quote():
    for value in ("it's", "a b", "50%", "x; DROP TABLE", 1.5, True, None):
        with pytest.raises(ValueError):
            Constant(value)


def test_a_name_s_start_is_the_byte_range_that_startswith_means(bob):
    device = make_device(bob)
    names = ["LAPTOP-4", "LAPTOP-41", "LAPTOP-5", "LAPTOP-3\U0010ffff", "laptop-4", "LAPTOP_4", "café", "cafë", "caf"]
    Run.objects.bulk_create(
        Run(
            user=bob,
            device=device,
            action_name="A",
            action_uid=uuid.uuid4(),
            device_uid="u",
            device_name=name,
            timeout_seconds=60,
        )
        for name in names
    )
    for prefix in ("LAPTOP-4", "LAPTOP-3\U0010ffff", "LAPTOP_", "caf", "café", "L%", "\U0010ffff"):
        expected = {name for name in names if name.startswith(prefix)}
        found = set(Run.objects.filter(starts_with("device_name", prefix)).values_list("device_name", flat=True))
        assert found == expected, prefix
    assert (after_prefix("ab"), after_prefix("a\U0010ffff"), after_prefix("\U0010ffff")) == ("ac", "b", None)


def test_an_admin_search_by_ticket_number_reads_runs_by_primary_key(plans, client, admin_user, bob):
    run = Run.objects.filter(user=bob).first()
    Ticket.objects.create(run=run, backend="servicenow", number="INC0010001", requested_at=run.created_at)
    client.force_login(admin_user)
    plans.clear()

    response = client.get(reverse("admin:actions_run_changelist"), {"q": "inc0010001"})

    assert [r.pk for r in response.context["cl"].result_list] == [run.pk]
    assert index_scans(plans.of('"actions_run"."id" IN', "LIMIT")) == {"actions_run_pkey"}
