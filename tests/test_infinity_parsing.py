"""What the Infinity client makes of Nexthink's answers, shapes the documentation leaves open included."""

import pytest

from actions.models import RemoteAction
from actions.nexthink.errors import ActApiError, ActInputError
from actions.nexthink.infinity.client import (
    ExecutionStatus,
    TriggerInfo,
    build_execute_body,
    normalise_status,
    parse_accepted,
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


@pytest.mark.parametrize("action_id", ["#repair-vpn_v2", "#ExampleRA", "#a", "#clear_teams_cache"])
def test_a_remote_action_id_is_a_hash_then_a_name_dashes_included(action_id):
    body = build_execute_body(
        remote_action_id=action_id,
        devices=["0f3c2d1e-4b5a-4c6d-8e7f-901a2b3c4d5e"],
        params=None,
        expires_in_minutes=None,
        trigger_info=None,
    )

    assert body["remoteActionId"] == action_id
    RemoteAction._meta.get_field("nql_id").run_validators(action_id)  # the admin agrees: no ValidationError


@pytest.mark.parametrize("action_id", ["repair-vpn", "#", "# spaced", "#tab\t", "#" + "a" * 256])
def test_anything_else_is_refused_before_sending(action_id):
    with pytest.raises(ActInputError):
        build_execute_body(
            remote_action_id=action_id,
            devices=["0f3c2d1e-4b5a-4c6d-8e7f-901a2b3c4d5e"],
            params=None,
            expires_in_minutes=None,
            trigger_info=None,
        )


@pytest.mark.parametrize(
    ("uid", "accepted"),
    [
        ("0f3c2d1e-4b5a-4c6d-8e7f-901a2b3c4d5e", True),
        ("collector-42", False),
        ("0F3C2D1E4B5A4C6D8E7F901A2B3C4D5E", False),
    ],
)
def test_the_client_and_device_resolution_share_one_collector_uid_rule(uid, accepted):
    from actions.devices import resolution

    assert bool(resolution.COLLECTOR_UID_RE.fullmatch(uid.lower())) is accepted
    if accepted:
        build_execute_body(
            remote_action_id="#a", devices=[uid], params=None, expires_in_minutes=None, trigger_info=None
        )
    else:
        with pytest.raises(ActInputError):
            build_execute_body(
                remote_action_id="#a", devices=[uid], params=None, expires_in_minutes=None, trigger_info=None
            )


@pytest.mark.parametrize(("answered", "kept"), [(120, 120), (10**9, 10_080), (0, 60), (-5, 60), ("soon", 90)])
def test_the_expiry_nexthink_answers_is_kept_within_its_documented_range(answered, kept):
    assert parse_accepted({"requestId": "r-1", "expiresInMinutes": answered}, 90).expires_in_minutes == kept
