"""actions/compiled.py: a read compiled once answers as the ORM does, for every value bound to it."""

import uuid

import pytest

from actions.compiled import compiled_rows
from actions.models import Run
from actions.runs.submit import run_submit
from tests.factories import make_action, make_device


def statuses(run_id):
    return Run.objects.filter(pk=run_id).values_list("status", "user_id")


def test_each_call_binds_its_own_value(alice, bob):
    first = run_submit(user=alice, action=make_action(), device=make_device(alice), params={})
    second = run_submit(user=bob, action=make_action(), device=make_device(bob), params={})
    Run.objects.filter(pk=second.pk).update(status=Run.Status.FAILED)

    assert compiled_rows(statuses, first.pk) == list(statuses(first.pk))
    assert compiled_rows(statuses, second.pk) == [("failed", bob.pk)]


def twice(run_id):
    return Run.objects.filter(pk=run_id, retry_of_id=run_id).values_list("pk")


def test_a_query_must_take_its_value_exactly_once(db):
    with pytest.raises(RuntimeError, match="exactly once"):
        compiled_rows(twice, uuid.uuid4())


# --- The SQL is the ORM's own: nothing added by hand, on SQLite and on PostgreSQL ------------------
@pytest.fixture
def tools(db):
    """A category of a little more than two pages, some featured, with ties in the order (the id decides)."""
    from actions.catalog.selectors import PAGE_SIZE
    from actions.models import Category, RemoteAction

    category = Category.objects.create(name="Tools")
    RemoteAction.objects.bulk_create(
        RemoteAction(
            name=f"Action {i % 5}",
            slug=f"bulk-{i:04d}",
            nexthink_uid=uuid.uuid4(),
            enabled=True,
            category=category,
            featured=i % 7 == 0,
            display_order=i % 3,
        )
        for i in range(2 * PAGE_SIZE + 5)
    )
    return category


def test_a_compiled_read_runs_the_orm_s_own_sql_with_the_same_values(alice, tools):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from actions.catalog import selectors as s

    reads = {
        "overview": (s._overview_of, (alice.pk,)),
        "category page 2": (s._category_page_of, (alice.pk, tools.pk, s.PAGE_SIZE + 1, 2 * s.PAGE_SIZE)),
        "featured page": (s._featured_page_of, (alice.pk, 1, s.PAGE_SIZE)),
        "action": (s._visible_action_pk, (alice.pk, "bulk-0003")),
    }
    for name, (build, values) in reads.items():
        with CaptureQueriesContext(connection) as orm:
            expected = list(build(*values))
        with CaptureQueriesContext(connection) as compiled:
            assert compiled_rows(build, *values) == expected, name
        # Byte for byte the SQL Django logs for the ORM's own run: no wrapping, no LIMIT appended.
        assert [q["sql"] for q in compiled] == [q["sql"] for q in orm], name
        assert expected, name


def test_a_category_page_is_the_orm_s_slice_of_the_listing(alice, tools):
    """Its bounds are a filter on the rows' number (so they stay parameters): the same rows as slicing."""
    from actions.catalog import selectors as s

    listing = s._listing(s.actions_visible_to(alice).filter(category_id=tools.pk), s.IN_CATEGORY_ORDER)

    for page in (1, 2, 3, 4):
        offset = (page - 1) * s.PAGE_SIZE
        assert s._page_rows("category", alice.pk, tools.pk, page) == list(listing[offset : offset + s.PAGE_SIZE])


# --- PostgreSQL (CI's second run): the pool's connections, and psycopg prepares the read itself -----
def test_on_postgresql_a_compiled_read_is_prepared_once_on_the_pooled_connection(alice, settings):
    from django.db import connection

    from actions.catalog.selectors import _page_rows

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's prepared statements: CI's second run (DATABASE_URL=postgres://...)")
    assert settings.DATABASE_POOL_MAX_SIZE and connection.pool is not None  # the production path: pooled
    threshold = connection.settings_dict["OPTIONS"]["prepare_threshold"]

    # Page 1 and page 700: bounds that psycopg would send as int2 and as int4 if the compiled read did
    # not keep the type the ORM gave them (Int4), and so prepare twice.
    for _ in range(threshold + 1):
        for page in (1, 700):
            assert _page_rows("other", alice.pk, None, page) == []

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%ROW_NUMBER()%"])
        assert cursor.fetchone() == (1,)  # psycopg prepared it itself, on Django's ordinary cursor


def created_after(user_id, since):
    return Run.objects.filter(user_id=user_id, created_at__gt=since).values_list("status")


def test_a_datetime_is_bound_as_the_orm_binds_it(alice, bob):
    """SQLite takes a datetime as naive UTC text, PostgreSQL as itself: each call's own time."""
    from datetime import timedelta

    from django.utils import timezone

    run = run_submit(user=alice, action=make_action(), device=make_device(alice), params={})
    created = Run.objects.get(pk=run.pk).created_at
    for since in (created - timedelta(seconds=1), created - timedelta(microseconds=1), created, timezone.now()):
        assert compiled_rows(created_after, alice.pk, since) == list(created_after(alice.pk, since)), since
    assert compiled_rows(created_after, alice.pk, created - timedelta(microseconds=1)) == [("queued",)]
    assert compiled_rows(created_after, bob.pk, created - timedelta(days=1)) == []


def test_fair_use_and_the_session_are_read_with_queries_compiled_once(alice_client, alice, monkeypatch):
    """Every signed-in request reads its session, and the action page, the form POST and "Run again"
    each count the employee's fair use: their SQL is compiled once per process, not per request."""
    from django.urls import reverse

    from actions import compiled
    from actions.accounts.sessions import _session_data
    from actions.runs.submit import _fair_use_counts, fair_use

    monkeypatch.setattr(compiled, "_compiled", {})
    action = make_action()
    device = make_device(alice)
    assert alice_client.get(reverse("action_detail", args=[action.slug])).status_code == 200
    run_submit(user=alice, action=action, device=device, params={})

    assert {build for build, *_ in compiled._compiled} >= {_session_data, _fair_use_counts}
    from django.utils import timezone

    assert fair_use(user=alice, now=timezone.now()).allowed


def test_the_signed_in_user_is_read_with_a_query_compiled_once_as_the_orm_reads_it(alice_client, alice, monkeypatch):
    """Every signed-in request reads its user: the same instance as the ORM's, every field converted
    (aware datetimes on SQLite too), through a query compiled once per process."""
    from django.contrib.auth.models import User
    from django.urls import reverse
    from django.utils import timezone

    from actions import compiled
    from actions.accounts.users import _user_by_pk, user_by_pk

    User.objects.filter(pk=alice.pk).update(last_login=timezone.now(), is_staff=True)
    expected = User.objects.get(pk=alice.pk)

    found = user_by_pk(str(alice.pk))  # as the session holds it
    assert [getattr(found, f.attname) for f in User._meta.concrete_fields] == [
        getattr(expected, f.attname) for f in User._meta.concrete_fields
    ]
    assert timezone.is_aware(found.last_login) and found.is_staff is True and found._state.adding is False
    assert user_by_pk("999999") is None and user_by_pk("not a number") is None

    monkeypatch.setattr(compiled, "_compiled", {})
    assert alice_client.get(reverse("catalog")).status_code == 200
    assert _user_by_pk in {build for build, *_ in compiled._compiled}


def test_a_run_page_reads_the_run_with_its_action_device_and_ticket_as_select_related_does(
    alice, bob, django_assert_num_queries
):
    """The run page and each poll: the employee's own run and what the page shows with it, in one
    query compiled once; every field as the ORM reads it, no query when the page follows them."""
    from actions.models import Ticket
    from actions.runs.selectors import RUN_PAGE_RELATED, own_run

    with_ticket = run_submit(user=alice, action=make_action(), device=make_device(alice), params={})
    Ticket.objects.create(
        run=with_ticket, requested_by=alice, backend="servicenow", requested_at=with_ticket.created_at
    )
    bare = run_submit(user=alice, action=make_action(), device=make_device(alice), params={})
    Run.objects.filter(pk=bare.pk).update(action=None, device=None)  # withdrawn action, forgotten device

    def fields(instance):
        return [getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields] if instance else None

    for run in (with_ticket, bare):
        expected = Run.objects.select_related(*RUN_PAGE_RELATED).get(pk=run.pk)
        with django_assert_num_queries(1):
            found = own_run(alice, run.pk)
            assert fields(found) == fields(expected)
            assert fields(found.action) == fields(expected.action)
            assert fields(found.device) == fields(expected.device)
            ticket = getattr(found, "ticket", None)
            assert fields(ticket) == fields(getattr(expected, "ticket", None))
            assert ticket is None or ticket.run is found
    assert own_run(bob, with_ticket.pk) is None  # another employee's run is absent
    assert own_run(alice, uuid.uuid4()) is None


def test_dispatch_reads_the_run_to_send_with_a_query_compiled_once(alice, action, laptop, use_simulator, monkeypatch):
    """The worker's read of the run it sends (its action, device, employee, requester): compiled once."""
    from actions import compiled
    from actions.runs.dispatch import _run_to_send, run_dispatch

    monkeypatch.setattr(compiled, "_compiled", {})
    run = run_submit(user=alice, action=action, device=laptop, params={"Mode": "full"})

    assert run_dispatch(run_id=str(run.pk)) is not None  # as the task gives it: text
    assert _run_to_send in {build for build, *_ in compiled._compiled}
    assert Run.objects.get(pk=run.pk).status == Run.Status.PARTIAL  # the third Engine has no licence


def test_the_form_post_s_reads_are_compiled_once(alice_client, alice, action, laptop, monkeypatch):
    """The form POST: the employee's devices, the employee's lock and the one-time key's run."""
    from django.urls import reverse

    from actions import compiled
    from actions.devices.resolution import _directory_rows
    from actions.runs.submit import _lock_user, _run_with_key

    monkeypatch.setattr(compiled, "_compiled", {})
    form = {"device": laptop.uid, "idempotency_key": "k" * 32, "param_Mode": "full"}
    first = alice_client.post(reverse("action_detail", args=[action.slug]), form)
    again = alice_client.post(reverse("action_detail", args=[action.slug]), form)  # the same form twice

    assert first.status_code == again.status_code == 302 and first["Location"] == again["Location"]
    assert Run.objects.filter(user=alice).count() == 1
    assert {build for build, *_ in compiled._compiled} >= {_directory_rows, _lock_user, _run_with_key}
