"""The portal's own admin pages in French and German: no English text of the portal's left on the main
pages (Django's admin translates its own words). The approach of tests/test_languages.py: a page
read in English and in each language; a text shown unchanged in both is untranslated."""

from datetime import date

import pytest
from auditlog.models import LogEntry
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.forms.utils import pretty_name
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import Promise

from actions.admin.audit import AuditTrailAdmin
from actions.models import EngineResult, RunAttempt
from actions.runs.approvals import run_approve
from actions.uids import run_reference
from tests.factories import make_device, make_parameter, make_sim_action, submit
from tests.test_languages import LANGUAGES, back_to_the_default_language, pages_translated  # noqa: F401

ENGINE_UID = "a" * 32


def test_every_label_django_would_make_from_a_name_is_the_portals_to_translate():
    """Django makes a label from a model's or field's own name where the model gives none: English in
    every language. Each of the portal's models and fields names itself, marked for translation."""
    unnamed = []
    for model in apps.get_app_config("actions").get_models():
        for option in ("verbose_name", "verbose_name_plural"):
            if not isinstance(model._meta.original_attrs.get(option), Promise):
                unnamed.append(f"{model.__name__}.Meta.{option}")
        own = [f for f in model._meta.get_fields() if hasattr(f, "_verbose_name") and not f.auto_created]
        unnamed += [
            f"{model.__name__}.{f.name}" for f in own if f.model is model and not isinstance(f._verbose_name, Promise)
        ]
    assert not unnamed


def stored_changes(entry: LogEntry) -> list:
    """The field names and values a record stored (m2m changes: their objects' names). A name with no
    label of the model's (django-auditlog records reverse relations too: "runs") shows as it is stored."""
    values: list = []
    for field, change in (entry.changes_dict or {}).items():
        values += [field, pretty_name(field)]
        if isinstance(change, dict):
            values += change.get("objects", [])
        elif isinstance(change, (list, tuple)):
            values += change
    return [value for value in values if value not in (None, "")]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_admin_pages_have_no_english_of_the_portals_left(client, admin_user, alice, language):
    approvers = Group.objects.create(name="Security approvers")
    admin_user.groups.add(approvers)
    action = make_sim_action(slug="clear-teams-cache", summary="Closes Teams and clears its cache.")
    make_parameter(action, name="Mode", label="Mode")
    device = make_device(alice, name="LAPTOP-ALICE")
    done = submit(alice, action, device, params={"Mode": "full"})
    action.approver_group, action.approval_hours = approvers, 24
    action.save()
    waiting = submit(alice, action, device, params={"Mode": "full"}, reason="Teams will not start")
    approved = submit(alice, action, device, params={"Mode": "full"}, reason="Teams will not start")
    run_approve(run_id=approved.pk, approver=admin_user, comment="OK")
    # The run's page lists what each Engine answered and each attempt: their tables' column names.
    EngineResult.objects.create(run=done, database_uid=ENGINE_UID, engine_name="engine-emea", code="ok")
    RunAttempt.objects.create(run=done, number=1, started_at=timezone.now(), outcome="answered")
    client.force_login(admin_user)
    created = LogEntry.objects.get_for_object(action).filter(action=LogEntry.Action.CREATE).get()
    pages = [
        reverse("admin:actions_run_changelist"),
        reverse("admin:actions_run_change", args=[done.pk]),
        reverse("admin:actions_remoteaction_changelist"),
        reverse("admin:actions_remoteaction_change", args=[action.pk]),
        reverse("admin:actions_remoteaction_add"),
        reverse("admin:actions_device_changelist"),
        reverse("admin:actions_runinsight_changelist"),
        reverse("admin:actions_remoteaction_import_catalog"),
        # The audit trail: what it recorded stays as stored (object names, changes; data below), its
        # columns, filters and titles follow the language.
        reverse("admin:auditlog_logentry_changelist"),
        reverse("admin:auditlog_logentry_change", args=[created.pk]),
        reverse("approvals"),
    ]
    with translation.override("en"):  # what the trail stored, and its changes as the list shows them
        recorded = [
            *(entry.object_repr for entry in LogEntry.objects.all()),
            *(AuditTrailAdmin.msg_short(None, entry) for entry in LogEntry.objects.all()),
            *(str(value) for entry in LogEntry.objects.all() for value in stored_changes(entry)),
        ]
    runs = [done, waiting, approved]
    data = [
        *(str(value) for run in runs for value in (run.pk, run_reference(run.pk), run.device_uid, run.action_uid)),
        *(run.idempotency_key for run in runs if run.idempotency_key),
        action.name,
        action.slug,
        action.summary,
        "Mode",
        "full",
        "Teams will not start",
        "LAPTOP-ALICE",
        "Security approvers",
        "alice",
        "admin",
        "Nexthink",
        "Engine",
        "NXQL",
        "UTC",
        *recorded,
        "engine-emea",
        ENGINE_UID,
        "answered",
        django_settings.PORTAL_NAME,
        "Portal curators",  # a group the migrations make
        "Tickets",  # the same word in French (a model's name, capitalised where Django lists it)
        # Not the portal's: another app's name (django-axes), and what Django's admin leaves untranslated
        # in some languages (its search and yes/no icons' alt, a filter's empty choice).
        "Axes",
        "Search",
        "Run",  # the admin actions' button, in German
        "True",
        "False",
        "- Select an option -",
        "Pagination",
        # The chart's days ("Nov 06"): Django's short month names, the same word in these languages.
        *(date(2026, month, 1).strftime("%b") for month in range(1, 13)),
    ]
    checked = pages_translated(client, pages, data, language)
    assert checked > 300  # the pages said something: the comparison above had text to compare
