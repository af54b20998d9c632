"""Small builders for the models tests need, and the plain helpers several test files share; plain functions,
no factory library."""

import io
import itertools
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from actions.models import ActionParameter, Device, RemoteAction, Run
from actions.nexthink.errors import ActApiError
from actions.runs.submit import run_submit

_counter = itertools.count(1)
SIM_ACTION = "07844969-1889-4de3-9026-020af94be855"  # enabled and manual in the simulator
# The simulator's Engines (simulators/act_api.py) and its device of CORP\alice, on engine-emea: the
# uid of the `laptop` fixture.
EMEA = "86acc8511251ec444d3a75bac33a23c7"
AMER = "a4690014774dcc32b919c27d616166f7"
APAC = "ce80dddfdb7a5c2346c4ac184b7d6a54"
ALICE_LAPTOP = "da2add909a144e8235453f88dc45172f"
FORM_KEY = "k" * 32  # the idempotency key `post_run` sends


def make_action(**fields) -> RemoteAction:
    n = next(_counter)
    values = {
        "name": f"Action {n}",
        "slug": f"action-{n}",
        "summary": "Fixes a thing.",
        "nexthink_uid": uuid.uuid4(),
        "enabled": True,
    } | fields
    return RemoteAction.objects.create(**values)


def make_sim_action(**fields) -> RemoteAction:
    """An action the simulator knows, so dispatching it gets real Engine answers."""
    return make_action(**{"name": "Clear Teams cache", "nexthink_uid": uuid.UUID(SIM_ACTION)} | fields)


def make_parameter(action: RemoteAction, **fields) -> ActionParameter:
    values = {"name": "Mode", "label": "Mode", "kind": ActionParameter.Kind.TEXT, "required": False} | fields
    return ActionParameter.objects.create(action=action, **values)


def make_device(owner, **fields) -> Device:
    n = next(_counter)
    values = {"uid": f"{n:032x}", "name": f"LAPTOP-{n}", "owner": owner} | fields
    return Device.objects.create(**values)


def make_laptop(owner, **fields) -> Device:
    """The device of the `laptop` fixture: uid ALICE_LAPTOP, named LAPTOP-ALICE."""
    return make_device(owner, **{"uid": ALICE_LAPTOP, "name": "LAPTOP-ALICE"} | fields)


def submit(user, action, device, **kwargs) -> Run:
    """`run_submit` with the Mode parameter of the `action` fixture set to "full", unless `params` is given."""
    return run_submit(user=user, action=action, device=device, params=kwargs.pop("params", {"Mode": "full"}), **kwargs)


def post_run(client, action, **values):
    """Post the action page's run form for the `laptop` device with the key FORM_KEY; `values` add or replace fields."""
    return client.post(action.get_absolute_url(), {"device": ALICE_LAPTOP, "idempotency_key": FORM_KEY} | values)


def make_due(row) -> None:
    """Make the planned retry of a run or a ticket due now (instead of waiting for the backoff)."""
    type(row).objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def error_of(call) -> ActApiError:
    """The ActApiError that `call()` raises (failing the test if it raises none)."""
    with pytest.raises(ActApiError) as info:
        call()
    return info.value


def run_command(name, *args) -> tuple[int, str, str]:
    """`manage.py name args` in this process: its exit code, what it wrote to stdout and to stderr."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()
