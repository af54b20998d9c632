"""Small builders for the models tests need; plain functions, no factory library."""

import itertools
import uuid

from actions.models import ActionParameter, Device, RemoteAction

_counter = itertools.count(1)
SIM_ACTION = "07844969-1889-4de3-9026-020af94be855"  # enabled and manual in the simulator
EMEA = "86acc8511251ec444d3a75bac33a23c7"


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
