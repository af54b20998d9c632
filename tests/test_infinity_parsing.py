"""What the Infinity client makes of Nexthink's answers, shapes the documentation leaves open included."""

import pytest

from actions.nexthink.errors import ActApiError
from actions.nexthink.infinity.client import (
    ExecutionStatus,
    TriggerInfo,
    normalise_status,
    parse_execution,
    parse_nql_rows,
    parse_outputs,
)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("waiting_for_device", ExecutionStatus.WAITING),
        ("Waiting for device", ExecutionStatus.WAITING),
        ("in progress", ExecutionStatus.IN_PROGRESS),
        ("IN_PROGRESS", ExecutionStatus.IN_PROGRESS),
        ("success", ExecutionStatus.SUCCESS),
        ("Failure", ExecutionStatus.FAILURE),
        ("failed", ExecutionStatus.FAILURE),
        ("expired", ExecutionStatus.EXPIRED),
        ("canceled", ExecutionStatus.CANCELLED),
        ("something_new", ExecutionStatus.UNKNOWN),
        ("", ExecutionStatus.UNKNOWN),
    ],
)
def test_it_normalises_every_spelling_of_a_status(raw, status):
    assert normalise_status(raw) is status


def test_an_unknown_status_is_kept_and_is_not_final():
    execution = parse_execution({"device.collector.uid": "c-1", "status": "paused_by_admin"})

    assert (execution.status, execution.raw_status, execution.is_final) == (
        ExecutionStatus.UNKNOWN,
        "paused_by_admin",
        False,
    )


def test_it_reads_fully_qualified_field_names_and_one_column_per_output():
    execution = parse_execution(
        {
            "device.collector.uid": "c-1",
            "remote_action.execution.status": "success",
            "remote_action.execution.status_details": "ok",
            "remote_action.execution.outputs.FreedGB": 14.2,
            "remote_action.execution.time": "2026-01-01T10:00:00Z",
        }
    )

    assert (execution.status, execution.status_details, execution.time) == (
        ExecutionStatus.SUCCESS,
        "ok",
        "2026-01-01T10:00:00Z",
    )
    assert execution.outputs == {"FreedGB": "14.2"}


@pytest.mark.parametrize(
    ("value", "outputs"),
    [
        ({"A": 1, "B": None}, {"A": "1", "B": ""}),
        ('{"A": "x"}', {"A": "x"}),
        ([{"name": "A", "value": "x"}], {"A": "x"}),
        ("not json", {"output": "not json"}),
        (None, {}),
    ],
)
def test_outputs_become_text_by_name(value, outputs):
    assert parse_outputs(value) == outputs


def test_it_reads_rows_as_objects_or_as_arrays_beside_headers():
    assert parse_nql_rows({"data": [{"a": 1}]}) == [{"a": 1}]
    assert parse_nql_rows({"headers": ["a", "b"], "data": [[1, 2]]}) == [{"a": 1, "b": 2}]


@pytest.mark.parametrize("data", [{}, [], {"data": [[1, 2]]}, {"headers": ["a"], "data": [[1, 2]]}])
def test_an_unreadable_nql_answer_is_a_bad_response(data):
    with pytest.raises(ActApiError) as info:
        parse_nql_rows(data)

    assert info.value.reason == "BAD_RESPONSE"


def test_trigger_info_names_the_portal_and_cuts_the_reason():
    body = TriggerInfo(reason="r" * 501, external_reference="ref").as_body()

    assert body == {"externalSource": "Fix my device", "reason": "r" * 500, "externalReference": "ref"}
