"""actions/compiled.py: a read compiled once answers as the ORM does, for every value bound to it."""

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
    import uuid

    with pytest.raises(RuntimeError, match="exactly once"):
        compiled_rows(twice, uuid.uuid4())
