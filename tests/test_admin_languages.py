"""The portal's own admin pages in French and German: no English text of the portal's left on the main
pages (Django's admin translates its own words). The approach of tests/test_languages.py: a page
read in English and in each language; a text shown unchanged in both is untranslated."""

from datetime import date

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils.text import capfirst

from actions.runs.approvals import run_approve
from actions.uids import run_reference
from tests.factories import make_device, make_parameter, make_sim_action, submit
from tests.test_languages import LANGUAGES, back_to_the_default_language, pages_translated  # noqa: F401


def named_by_their_field() -> list[str]:
    """Labels Django makes from a field's or model's own name, with no text of the portal's to translate:
    giving them one would need a migration (README "Languages"). They stay English for now."""
    names = []
    for model in apps.get_app_config("actions").get_models():
        if "verbose_name" not in model._meta.original_attrs:
            names += [str(model._meta.verbose_name), str(model._meta.verbose_name_plural)]
            names += [capfirst(name) for name in names[-2:]]
        for field in model._meta.get_fields():
            if getattr(field, "_verbose_name", "") is None:
                names += [str(capfirst(field.verbose_name)), str(field.verbose_name)]
    return names


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
    client.force_login(admin_user)
    pages = [
        reverse("admin:actions_run_changelist"),
        reverse("admin:actions_run_change", args=[done.pk]),
        reverse("admin:actions_remoteaction_changelist"),
        # Not yet: the action's change page (admin:actions_remoteaction_change), whose form's own help
        # texts (actions/catalog/forms.py, RemoteActionAdminForm, ActionParameterAdminForm) are still English.
        reverse("admin:actions_runinsight_changelist"),
        reverse("admin:actions_remoteaction_import_catalog"),
        # Not here: the audit trail (admin:auditlog_logentry_changelist) shows what was stored, in English
        # by design (object names, changes), under django-auditlog's own column names ("Timestamp").
        reverse("approvals"),
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
        *named_by_their_field(),
        django_settings.PORTAL_NAME,
        "Portal curators",  # a group the migrations make
        # Not the portal's: other apps' names (django-auditlog, django-axes), and what Django's admin
        # leaves untranslated in some languages (its search and yes/no icons' alt, a filter's empty choice).
        "Audit log",
        "Axes",
        "Search",
        "True",
        "False",
        "- Select an option -",
        "Pagination",
        # The chart's days ("Nov 06"): Django's short month names, the same word in these languages.
        *(date(2026, month, 1).strftime("%b") for month in range(1, 13)),
    ]
    checked = pages_translated(client, pages, data, language)
    assert checked > 300  # the pages said something: the comparison above had text to compare
