"""Portal actions from Nexthink Infinity's remote action list (import_remote_actions, the admin button).

Only actions whose API trigger is enabled are imported: the others cannot be run by the portal. An
action is matched by its NQL id (then by its uuid, for an action a curator created by hand). What the
script accepts comes from Nexthink; how it is shown to employees is the curator's:

- a new action is created *disabled*, named and described as in Nexthink, with one parameter per
  input: an input with options and no custom value becomes a choice of exactly those options; any
  other input becomes free text (its options, if any, are named in the help text);
- which systems the script exists for (hasScriptWindows, hasScriptMacOs) and which inputs each
  system's script uses (usedByWindows, usedByMacOs) are Nexthink's facts: set on every import;
- an existing action keeps its name, texts, audience, limits and state; its parameters follow the
  inputs: a new input is added, a removed one deleted, and a closed list of options replaces the
  choices when the values differ (labels the curator wrote are kept while the values are the same).
  Labels, help texts, defaults and other rules of a parameter are left as the curator set them.

Each action is validated as the admin and import_catalog validate it, and imported whole or rejected.
Running it twice changes nothing the second time; `dry_run` reports without changing anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from actions.catalog.parameters import parameter_definition_errors, parse_choices, remote_action_errors
from actions.models import ActionParameter, RemoteAction
from actions.nexthink.infinity.client import ActionInput, InfinityRemoteAction, InfinityWorkflow
from actions.platforms import labels, runs_on, used_by

# A uuid for an action whose list entry has none (or not a valid one): stable, so a re-run matches.
UUID_NAMESPACE = uuid.UUID("6b1f0a52-61c4-4a38-9d2e-5c3f4b7e8a90")
WORKFLOW_UUID_NAMESPACE = uuid.UUID("0c8e7d41-3f5a-4b2e-9a61-7d2c5e8f1b34")
REMOTE_ACTION, WORKFLOW = RemoteAction.Kind.REMOTE_ACTION, RemoteAction.Kind.WORKFLOW
# What the run page calls a workflow's outputs (the workflow executions query's outcome columns).
WORKFLOW_OUTPUT_LABELS = {"outcome": "Outcome", "outcome_details": "Outcome details"}


@dataclass
class RemoteActionImport:
    created: list[str] = field(default_factory=list)
    updated: list[tuple[str, list[str]]] = field(default_factory=list)  # (label, what changed)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not API-enabled
    rejected: list[tuple[str, str]] = field(default_factory=list)
    not_listed: list[str] = field(default_factory=list)  # portal actions whose NQL id Nexthink no longer lists

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def summary(self, skipped: str = "not API-enabled") -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.skipped)} {skipped}, {len(self.rejected)} rejected, "
            f"{len(self.not_listed)} no longer listed by Nexthink."
        )


class Rejected(Exception):
    pass


def remote_actions_import(actions: list[InfinityRemoteAction], *, dry_run: bool = False) -> RemoteActionImport:
    return _import_each(
        [(remote, remote.name, remote.id, remote.api_enabled) for remote in actions],
        _import_one,
        kind=REMOTE_ACTION,
        dry_run=dry_run,
    )


def _import_each(
    items: list[tuple[Any, str, str, bool]],
    import_one: Callable[[Any], tuple[str, list[str]]],
    *,
    kind: str,
    dry_run: bool,
) -> RemoteActionImport:
    """Import each (item, name, NQL id, importable) whole or not at all; report what happened to each,
    and which catalog entries of `kind` Nexthink no longer lists."""
    report = RemoteActionImport()
    listed = set()
    with transaction.atomic():
        for remote, name, nql_id, importable in items:
            label = f"{name} ({nql_id})"
            if not importable:
                report.skipped.append(label)
                continue
            listed.add(nql_id)
            try:
                with transaction.atomic():
                    outcome, changes = import_one(remote)
            except Rejected as exc:
                report.rejected.append((label, str(exc)))
                continue
            if outcome == "created":
                report.created.append(label)
            elif outcome == "updated":
                report.updated.append((label, changes))
            else:
                report.unchanged.append(label)
        report.not_listed = [
            f"{a.name} ({a.nql_id})"
            for a in RemoteAction.objects.filter(kind=kind).exclude(nql_id="").exclude(nql_id__in=listed)
        ]
        if dry_run:
            transaction.set_rollback(True)
    return report


def _uuid_of(remote: InfinityRemoteAction | InfinityWorkflow, namespace: uuid.UUID = UUID_NAMESPACE) -> uuid.UUID:
    try:
        return uuid.UUID(remote.uuid)
    except ValueError:
        return uuid.uuid5(namespace, remote.id)


def _import_one(remote: InfinityRemoteAction) -> tuple[str, list[str]]:
    uid = _uuid_of(remote)
    action = RemoteAction.objects.filter(kind=REMOTE_ACTION, nql_id=remote.id).first()
    if action is None:
        action = RemoteAction.objects.filter(kind=REMOTE_ACTION, nexthink_uid=uid).first()
    if action is None:
        action = _new_action(
            remote,
            uid,
            kind=REMOTE_ACTION,
            labels=output_labels(remote),
            windows=remote.has_script_windows,
            macos=remote.has_script_macos,
        )
        parameters = [_new_parameter(i, order) for order, i in enumerate(remote.inputs)]
        _validate(action, parameters)
        action.save()
        for param in parameters:
            param.action = action
            param.save()  # one by one: the audit trail records each (bulk_create sends no signal)
        return "created", []

    changes = []
    if action.nql_id != remote.id:
        changes.append(f"NQL id set to {remote.id}")
        action.nql_id = remote.id
    if action.output_labels != output_labels(remote):
        changes.append("output labels updated")
        action.output_labels = output_labels(remote)
    systems = (remote.has_script_windows, remote.has_script_macos)
    if (action.runs_on_windows, action.runs_on_macos) != systems:
        action.runs_on_windows, action.runs_on_macos = systems
        changes.append(f"runs on {labels(runs_on(action))}")
    existing = {p.name.lower(): p for p in action.parameters.all()}
    wanted, to_delete = [], []
    for order, item in enumerate(remote.inputs):
        known = existing.pop(item.id.lower(), None)
        if known is None:
            wanted.append(_new_parameter(item, order))
            changes.append(f"parameter {item.id} added")
        else:
            changed = []
            if _follow_options(known, item):
                changed.append(f"parameter {item.id}: options now {', '.join(item.options)}")
            if (known.used_by_windows, known.used_by_macos) != (item.used_by_windows, item.used_by_macos):
                known.used_by_windows, known.used_by_macos = item.used_by_windows, item.used_by_macos
                changed.append(f"parameter {item.id}: used on {labels(used_by(known))}")
            if changed:
                wanted.append(known)
                changes.extend(changed)
    for param in existing.values():
        to_delete.append(param)
        changes.append(f"parameter {param.name} removed (no longer an input in Nexthink)")
    if not changes:
        return "unchanged", []
    _validate(action, [*action.parameters.exclude(pk__in=[p.pk for p in to_delete + wanted if p.pk]), *wanted])
    action.save()
    ActionParameter.objects.filter(pk__in=[p.pk for p in to_delete]).delete()
    for param in wanted:
        param.action = action
        param.save()
    return "updated", changes


def _new_action(
    remote: InfinityRemoteAction | InfinityWorkflow,
    uid: uuid.UUID,
    *,
    kind: str,
    labels: dict[str, str],
    windows: bool,
    macos: bool,
) -> RemoteAction:
    description = remote.description.strip()
    return RemoteAction(
        kind=kind,
        name=(remote.name or remote.id)[:120],
        slug=_unique_slug(remote.name or remote.id.lstrip("#")),
        summary=description.splitlines()[0][:200] if description else "",
        description=description,
        nexthink_uid=uid,
        nql_id=remote.id,
        output_labels=labels,
        runs_on_windows=windows,
        runs_on_macos=macos,
        enabled=False,  # a curator decides who sees it, and enables it
    )


def output_labels(remote: InfinityRemoteAction) -> dict[str, str]:
    """What the run page calls each output: Nexthink's name for it, by its id."""
    return {output.id: output.name for output in remote.outputs if output.id and output.name}


def _unique_slug(base: str) -> str:
    base = slugify(base)[:100] or "action"
    slug, n = base, 2
    while RemoteAction.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _closed(item: ActionInput) -> bool:
    return bool(item.options) and not item.allow_custom_value


def _new_parameter(item: ActionInput, order: int) -> ActionParameter:
    help_text = item.description.strip()
    if item.options and item.allow_custom_value:
        suggestions = f"For example: {', '.join(item.options)}."
        help_text = f"{help_text} {suggestions}".strip() if help_text else suggestions
    return ActionParameter(
        name=item.id,
        label=(item.name or item.id)[:120],
        help_text=help_text[:300],
        kind=ActionParameter.Kind.CHOICE if _closed(item) else ActionParameter.Kind.TEXT,
        choices="\n".join(item.options) if _closed(item) else "",
        required=True,
        display_order=(order + 1) * 10,
        used_by_windows=item.used_by_windows,
        used_by_macos=item.used_by_macos,
    )


def _follow_options(param: ActionParameter, item: ActionInput) -> bool:
    """Make a closed input's parameter a choice of exactly Nexthink's options; True when it changed."""
    if not _closed(item):
        return False
    values = [value for value, _ in parse_choices(param.choices)]
    if param.kind == ActionParameter.Kind.CHOICE and sorted(values) == sorted(item.options):
        return False
    param.kind = ActionParameter.Kind.CHOICE
    param.choices = "\n".join(item.options)
    param.regex = param.regex_message = ""
    param.max_length = param.min_value = param.max_value = None
    if param.default not in item.options:
        param.default = ""
    return True


def _validate(action: RemoteAction, parameters: list[ActionParameter]) -> None:
    try:
        action.full_clean(validate_unique=action.pk is None)
    except ValidationError as exc:
        raise Rejected(_messages(exc)) from None
    problems = remote_action_errors(action)
    if problems:
        raise Rejected("; ".join(f"{k}: {v}" for k, v in problems.items()))
    seen = set()
    for param in parameters:
        try:
            param.full_clean(exclude=["action"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            raise Rejected(f"input {param.name!r}: {_messages(exc)}") from None
        problems = parameter_definition_errors(param)
        if problems:
            raise Rejected(f"input {param.name!r}: " + "; ".join(f"{k}: {v}" for k, v in problems.items()))
        if param.name.lower() in seen:
            raise Rejected(f"input {param.name!r} appears twice (names ignore case)")
        seen.add(param.name.lower())


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


# --- Workflows -----------------------------------------------------------------------------------------
def workflows_import(workflows: list[InfinityWorkflow], *, dry_run: bool = False) -> RemoteActionImport:
    """Catalog entries of kind "workflow" from Nexthink's workflow list (those it lists for the API).

    Matched by NQL id among workflows. A new one is created disabled, named and described as in
    Nexthink, without parameters: the list does not say which parameters a workflow takes, so a
    curator adds them by hand (their names are sent as the workflow's `params`). An inactive workflow
    (no active version: Nexthink cannot trigger it) is skipped. An existing entry keeps everything a
    curator set; only its uuid follows Nexthink.
    """
    return _import_each(
        [(remote, remote.name, remote.id, remote.active) for remote in workflows],
        _import_workflow,
        kind=WORKFLOW,
        dry_run=dry_run,
    )


def workflow_summary(report: RemoteActionImport) -> str:
    return report.summary(skipped="inactive")


def _import_workflow(remote: InfinityWorkflow) -> tuple[str, list[str]]:
    uid = _uuid_of(remote, WORKFLOW_UUID_NAMESPACE)
    entry = RemoteAction.objects.filter(kind=WORKFLOW, nql_id=remote.id).first()
    if entry is None:
        # Nexthink's workflow list says nothing of systems: offered on both, as an unknown one is.
        entry = _new_action(remote, uid, kind=WORKFLOW, labels=dict(WORKFLOW_OUTPUT_LABELS), windows=True, macos=True)
        _validate(entry, [])
        entry.save()
        return "created", []
    if entry.nexthink_uid == uid:
        return "unchanged", []
    entry.nexthink_uid = uid
    _validate(entry, [])
    entry.save()
    return "updated", [f"uuid now {uid}"]
