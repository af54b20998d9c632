"""Issue 22 item 7, an admin finds everything: catalog export and import (a dry run first), the
systems column, help that says how the selectors work and names no command-line tool."""

import json

from auditlog.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from actions.admin import catalog as catalog_admin
from actions.catalog import transfer
from actions.models import RemoteAction
from tests.factories import make_action, make_parameter

EXPORT_URL = reverse("admin:actions_remoteaction_export_catalog")
IMPORT_URL = reverse("admin:actions_remoteaction_import_catalog")
CHANGELIST_URL = reverse("admin:actions_remoteaction_changelist")


def exported(client) -> dict:
    response = client.post(EXPORT_URL)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="catalog-')
    return json.loads(response.content)


def upload(client, data, name="catalog.json"):
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return client.post(IMPORT_URL, {"file": SimpleUploadedFile(name, raw, "application/json")})


def test_a_curator_exports_then_sees_what_an_import_would_change_before_applying_it(client, carol):
    action = make_action(name="Clean up disk", slug="clean-up-disk")
    make_parameter(action, name="Days", label="Days")
    client.force_login(carol)
    data = exported(client)
    data["actions"][0]["summary"] = "Frees space."
    data["actions"].append(data["actions"][0] | {"nexthink_uid": "07844969-1889-4de3-9026-020af94be855"})
    data["actions"][1] |= {"name": "Clean up disk 2", "slug": "clean-up-disk-2"}

    preview = upload(client, data)

    page = preview.content.decode()
    assert "Changed action: Clean up disk" in page and "New action: Clean up disk 2" in page
    assert RemoteAction.objects.count() == 1 and RemoteAction.objects.get().summary == "Fixes a thing."  # dry run

    applied = client.post(IMPORT_URL, {**preview.context["apply_form"].initial, "apply": "1"}, follow=True)

    assert "1 new, 1 changed" in applied.content.decode()
    assert RemoteAction.objects.get(slug="clean-up-disk").summary == "Frees space."
    assert RemoteAction.objects.get(slug="clean-up-disk-2").parameters.get().name == "Days"
    events = [e.additional_data["event"] for e in LogEntry.objects.filter(actor=carol) if e.additional_data]
    assert events.count("catalog_exported") == 1 and events.count("catalog_imported") == 1
    trail = client.get(reverse("admin:auditlog_logentry_changelist")).content.decode()
    assert "Imported a catalog file" in trail and "Exported the catalog" in trail


def test_a_file_that_is_not_a_catalog_is_refused_with_a_reason(admin_client, monkeypatch):
    assert "not valid JSON" in upload(admin_client, b"{nope").content.decode()
    assert "not a catalog export" in upload(admin_client, {"format": "other"}).content.decode()
    monkeypatch.setattr(transfer, "MAX_FILE_BYTES", 10)
    monkeypatch.setattr(catalog_admin, "MAX_FILE_BYTES", 10)
    assert "larger than" in upload(admin_client, {"format": "fix-my-device-catalog"}).content.decode()


def test_only_staff_who_may_change_the_catalog_may_import_it_and_only_by_post_export_it(client, carol):
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(carol)
    assert forged.post(EXPORT_URL).status_code == 403  # no CSRF token

    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_remoteaction"))
    client.force_login(viewer)

    assert client.get(IMPORT_URL).status_code == 403
    assert client.get(EXPORT_URL).status_code == 405
    assert client.post(EXPORT_URL).status_code == 200
    client.force_login(carol)
    assert client.get(IMPORT_URL).status_code == 200


def test_the_list_shows_which_system_an_action_runs_on_once_both_systems_have_actions(admin_client):
    make_action(name="Clear Teams cache")

    assert "systems" not in admin_client.get(CHANGELIST_URL).context["cl"].list_display

    make_action(name="Reset Dock", runs_on_windows=False)
    page = admin_client.get(CHANGELIST_URL)
    windows = admin_client.get(CHANGELIST_URL, {"runs_on": "windows"}).context["cl"].result_list

    assert "systems" in page.context["cl"].list_display
    assert '<td class="field-systems">macOS</td>' in page.content.decode()
    assert [a.name for a in windows] == ["Clear Teams cache"]


def test_the_two_list_selectors_help_says_how_they_work_not_how_a_list_box_does(admin_client):
    form = admin_client.get(reverse("admin:actions_remoteaction_add")).context["adminform"].form
    client_form = admin_client.get(reverse("admin:actions_apiclient_add")).context["adminform"].form

    for field in (form.fields["groups"], form.fields["engines"], client_form.fields["actions"]):
        assert "Hold down" not in field.help_text
        assert "to “Chosen" in field.help_text
    assert form.fields["groups"].help_text.startswith("The groups whose members may see and run it. None chosen")


def test_no_admin_help_names_a_command_line_tool(rf, admin_user):
    from pathlib import Path

    from django.contrib import admin

    import actions.management.commands as commands

    tools = ["manage.py", *(p.stem for p in Path(commands.__file__).parent.glob("[a-z]*.py"))]
    request = rf.get("/")
    request.user = admin_user
    texts = []
    for model, model_admin in admin.site._registry.items():
        forms = [model_admin.get_form(request)]
        forms += [inline.get_formset(request).form for inline in model_admin.get_inline_instances(request)]
        texts += [str(f.help_text) for form in forms for f in form.base_fields.values()]
        readonly = set(model_admin.get_readonly_fields(request)) - set(forms[0].base_fields)
        texts += [str(f.help_text) for f in model._meta.get_fields() if f.name in readonly and hasattr(f, "help_text")]
        texts += [str(model_admin.search_help_text or "")]
        texts += [str(a.description) for a in model_admin.get_actions(request).values()]

    assert [t for t in texts if any(tool in t for tool in tools)] == []
