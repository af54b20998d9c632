"""Move a curated catalog between portals (staging → production) as JSON: the admin's "Export the
catalog" and "Import a catalog" pages, and the export_catalog/import_catalog commands.

An action is identified by its Nexthink remote action UID: importing the same file twice changes
nothing the second time. Groups and Engines are referred to by name and database UID and must exist
on the receiving side (an action is rejected rather than imported with a wider or different audience).
Each action is validated as the admin validates it and imported whole or not at all.

Parameters are listed in the order the portal shows them, and that list order is what an import
reproduces: `display_order` values are made strictly increasing along the list (a tie, or a value
smaller than the one before, becomes the previous value + 1), on export and on import alike, so two
parameters that share a display order keep their relative order on the receiving side.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from actions.audit import audit_event
from actions.catalog.parameters import PARAMETER_FIELDS, parameter_definition_errors, remote_action_errors
from actions.models import ActionParameter, CatalogVersion, Category, Engine, RemoteAction

FORMAT = "fix-my-device-catalog"
VERSION = 1
# The largest file the admin's import page reads: a catalog of a few hundred actions is well under it.
MAX_FILE_BYTES = 2_000_000

ACTION_FIELDS = [
    "name",
    "slug",
    "summary",
    "description",
    "enabled",
    "icon",
    "display_order",
    "featured",
    "timeout_seconds",
    "confirmation_text",
    "cooldown_minutes",
    "daily_limit_per_user",
    "message_before",
    "message_after",
    # Optional in a file (older exports do not have them): Infinity's id and output names, and
    # what a ticket about the action says.
    "nql_id",
    "kind",
    "output_labels",
    "message_during",
    "ticket_category",
    "ticket_assignment_group",
    # Optional too: which systems the script exists for (older files: both).
    "runs_on_windows",
    "runs_on_macos",
    "approval_hours",
    "keywords",  # optional too: the words the catalog's search also finds the action by
]
ACTION_KEYS = {"nexthink_uid", "category", "groups", "engines", "parameters", "approver_group", *ACTION_FIELDS}


class Rejected(Exception):
    pass


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    categories_created: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.created)} new, {len(self.updated)} changed, {len(self.unchanged)} unchanged, "
            f"{len(self.rejected)} rejected, {len(self.categories_created)} new categories"
        )


# --- Export ------------------------------------------------------------------------------------


def action_as_dict(
    action: RemoteAction,
    parameters: list[ActionParameter],
    group_names: list[str],
    engine_uids: list[str],
    category_name: str | None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"nexthink_uid": str(action.nexthink_uid)}
    data.update({f: getattr(action, f) for f in ACTION_FIELDS})
    data["category"] = category_name
    data["groups"] = sorted(group_names)
    data["engines"] = sorted(engine_uids)
    data["approver_group"] = action.approver_group.name if action.approver_group is not None else None
    orders = sequential_orders([p.display_order for p in parameters])
    data["parameters"] = [
        {f: getattr(p, f) for f in PARAMETER_FIELDS} | {"display_order": order}
        for p, order in zip(parameters, orders, strict=True)
    ]
    return data


def sequential_orders(orders: list[int]) -> list[int]:
    """Display orders that sort exactly in list order: each one at least the previous one + 1.

    The portal orders parameters by display order, then by id; ids are not carried across portals,
    so a tie would let the receiving side reorder them.
    """
    result: list[int] = []
    for order in orders:
        result.append(order if not result or order > result[-1] else result[-1] + 1)
    return result


def stored_action_as_dict(action: RemoteAction) -> dict[str, Any]:
    return action_as_dict(
        action,
        list(action.parameters.all()),  # the portal's order: display order, then id
        [g.name for g in action.groups.all()],
        [e.database_uid for e in action.engines.all()],
        action.category.name if action.category else None,
    )


def export_catalog() -> dict[str, Any]:
    actions = RemoteAction.objects.select_related("category", "approver_group").prefetch_related(
        "parameters", "groups", "engines"
    )
    return {
        "format": FORMAT,
        "version": VERSION,
        "categories": [{"name": c.name, "display_order": c.display_order} for c in Category.objects.all()],
        "actions": [stored_action_as_dict(a) for a in actions.order_by("slug")],
    }


def catalog_export(*, actor) -> dict[str, Any]:
    """The catalog as export_catalog gives it, the download recorded in the audit trail."""
    data = export_catalog()
    audit_event("catalog_exported", target=_catalog_row(), actor=actor, details={"actions": len(data["actions"])})
    return data


def _catalog_row() -> CatalogVersion:
    """The one row that stands for the catalog as a whole (the audit trail's object for its events)."""
    row, _ = CatalogVersion.objects.get_or_create(pk=1)
    return row


# --- Import ------------------------------------------------------------------------------------


def catalog_file_read(raw: bytes) -> Any:
    """The JSON in an uploaded catalog file; ValueError, in plain words, when it cannot be one."""
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"The file is larger than {MAX_FILE_BYTES // 1_000_000} MB: not a catalog export.")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError("The file is not text (UTF-8): not a catalog export.") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"The file is not valid JSON (line {exc.lineno}, column {exc.colno}).") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("The file is not a catalog export from this portal.")
    return data


def catalog_import(data: Any, *, actor, file_name: str, dry_run: bool) -> ImportReport:
    """import_catalog for the admin's page: a dry run changes nothing; a real one is recorded in the
    audit trail (each action's own changes are recorded as every admin change is)."""
    report = import_catalog(data, dry_run=dry_run)
    if not dry_run:
        audit_event(
            "catalog_imported",
            target=_catalog_row(),
            actor=actor,
            details={
                "file": file_name[:200],
                "created": len(report.created),
                "updated": len(report.updated),
                "unchanged": len(report.unchanged),
                "rejected": len(report.rejected),
            },
        )
    return report


def import_catalog(data: Any, *, dry_run: bool = False) -> ImportReport:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"Not a catalog export: expected an object with format {FORMAT!r}.")
    if data.get("version") != VERSION:
        raise ValueError(f"Unsupported catalog version {data.get('version')!r}; this portal reads version {VERSION}.")
    categories, entries = data.get("categories", []), data.get("actions")
    if not isinstance(categories, list) or not isinstance(entries, list):
        raise ValueError("`categories` and `actions` must be lists.")
    report = ImportReport()
    with transaction.atomic():
        _import_categories(categories, report)
        for index, entry in enumerate(entries):
            label = _entry_label(entry, index)
            try:
                with transaction.atomic():
                    outcome = _import_action(entry, report)
            except Rejected as exc:
                report.rejected.append((label, str(exc)))
            else:
                getattr(report, outcome).append(label)
        if dry_run:
            transaction.set_rollback(True)
    return report


def _entry_label(entry: Any, index: int) -> str:
    if isinstance(entry, dict):
        return f"{entry.get('name') or '?'} ({entry.get('nexthink_uid') or 'no UID'})"
    return f"entry #{index + 1}"


def _import_categories(categories: list, report: ImportReport) -> None:
    for item in categories:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise ValueError(f"A category needs a name: {item!r}.")
        order = item.get("display_order", 100)
        if isinstance(order, bool) or not isinstance(order, int) or order < 0:
            raise ValueError(f"Category {item['name']!r}: display_order must be a whole number ≥ 0.")
        category, created = Category.objects.get_or_create(name=item["name"].strip(), defaults={"display_order": order})
        if created:
            report.categories_created.append(category.name)
        elif category.display_order != order:
            category.display_order = order
            category.save(update_fields=["display_order"])


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


def _import_action(entry: Any, report: ImportReport) -> str:
    if not isinstance(entry, dict):
        raise Rejected("not an object")
    unknown = sorted(set(entry) - ACTION_KEYS)
    if unknown:
        raise Rejected(f"unknown field(s): {', '.join(unknown)}")
    missing = sorted({"nexthink_uid", "name", "slug"} - set(entry))
    if missing:
        raise Rejected(f"missing field(s): {', '.join(missing)}")
    try:
        uid = uuid.UUID(str(entry["nexthink_uid"]))
    except ValueError:
        raise Rejected(f"nexthink_uid is not a GUID: {entry['nexthink_uid']!r}") from None

    existing = (
        RemoteAction.objects.select_related("category", "approver_group")
        .prefetch_related("parameters", "groups", "engines")
        .filter(nexthink_uid=uid)
        .first()
    )
    action = RemoteAction.objects.get(pk=existing.pk) if existing else RemoteAction(nexthink_uid=uid)
    for name in ACTION_FIELDS:
        if name in entry:
            setattr(action, name, entry[name])

    category_name = entry.get("category")
    if category_name in (None, ""):
        action.category = None
    elif isinstance(category_name, str):
        action.category, created = Category.objects.get_or_create(name=category_name)
        if created:
            report.categories_created.append(category_name)
    else:
        raise Rejected("category must be a name or null")

    group_names = _string_list(entry, "groups")
    groups = list(Group.objects.filter(name__in=group_names))
    missing_groups = sorted(set(group_names) - {g.name for g in groups})
    if missing_groups:
        raise Rejected(f"no such group here: {', '.join(missing_groups)} (create it first)")
    approver_name = entry.get("approver_group")
    if approver_name in (None, ""):
        action.approver_group = None
    elif isinstance(approver_name, str):
        action.approver_group = Group.objects.filter(name=approver_name).first()
        if action.approver_group is None:
            raise Rejected(f"no such group here: {approver_name} (create it first)")
    else:
        raise Rejected("approver_group must be a group's name or null")
    engine_uids = _string_list(entry, "engines")
    engines = list(Engine.objects.filter(database_uid__in=engine_uids))
    missing_engines = sorted(set(engine_uids) - {e.database_uid for e in engines})
    if missing_engines:
        raise Rejected(f"no such Engine here: {', '.join(missing_engines)}")

    try:
        action.full_clean()
    except ValidationError as exc:
        raise Rejected(_messages(exc)) from None
    problems = remote_action_errors(action)
    if problems:
        raise Rejected("; ".join(f"{k}: {v}" for k, v in problems.items()))

    parameters = _parameters(entry.get("parameters", []), action)
    incoming = action_as_dict(
        action, parameters, group_names, engine_uids, action.category.name if action.category else None
    )
    if existing is not None and stored_action_as_dict(existing) == incoming:
        return "unchanged"

    action.save()
    action.groups.set(groups)
    action.engines.set(engines)
    action.parameters.all().delete()
    for param in parameters:
        param.action = action
        param.save()  # one by one: the audit trail records each (bulk_create sends no signal)
    return "updated" if existing else "created"


def _string_list(entry: dict, key: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Rejected(f"{key} must be a list of strings")
    return value


def _parameters(items: Any, action: RemoteAction) -> list[ActionParameter]:
    if not isinstance(items, list):
        raise Rejected("parameters must be a list")
    parameters, seen = [], set()
    for item in items:
        if not isinstance(item, dict):
            raise Rejected("a parameter must be an object")
        unknown = sorted(set(item) - set(PARAMETER_FIELDS))
        if unknown:
            raise Rejected(f"parameter {item.get('name')!r}: unknown field(s): {', '.join(unknown)}")
        param = ActionParameter(action=action, **item)
        try:
            param.full_clean(exclude=["action"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            raise Rejected(f"parameter {item.get('name')!r}: {_messages(exc)}") from None
        problems = parameter_definition_errors(param)
        if problems:
            raise Rejected(f"parameter {param.name!r}: " + "; ".join(f"{k}: {v}" for k, v in problems.items()))
        if param.name.lower() in seen:
            raise Rejected(f"parameter {param.name!r} appears twice (names ignore case)")
        seen.add(param.name.lower())
        parameters.append(param)
    for param, order in zip(parameters, sequential_orders([p.display_order for p in parameters]), strict=True):
        param.display_order = order
    return parameters
