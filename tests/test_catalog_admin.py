"""Curating the catalog in the admin: validation, list tools, duplicate, preview, the curators' group."""

import uuid

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from actions.catalog.parameters import is_placeholder_uid
from actions.models import ActionParameter, Category, RemoteAction
from tests.factories import make_action, make_parameter

ADD_URL = reverse("admin:actions_remoteaction_add")
CHANGELIST_URL = reverse("admin:actions_remoteaction_changelist")


def param(**fields) -> dict:
    return {"name": "Days", "label": "Days", "kind": "text", "required": "on", "display_order": "100"} | fields


def form_data(*params, **fields) -> dict:
    data = {
        "name": "Clean up disk",
        "slug": "clean-up-disk",
        "nexthink_uid": "07844969-1889-4de3-9026-020af94be855",
        "icon": "disk",
        "display_order": "100",
        "cooldown_minutes": "0",
        "approval_hours": "24",
        "parameters-TOTAL_FORMS": str(len(params)),
        "parameters-INITIAL_FORMS": "0",
        "parameters-MIN_NUM_FORMS": "0",
        "parameters-MAX_NUM_FORMS": "1000",
    } | fields
    for i, p in enumerate(params):
        data.update({f"parameters-{i}-{k}": v for k, v in p.items()})
    return data


def parameter_errors(response, index=0) -> dict:
    return response.context["inline_admin_formsets"][0].formset.forms[index].errors


# --- Saving and validation ---------------------------------------------------------------------
def test_it_saves_an_action_with_a_parameter_of_each_type(admin_client):
    response = admin_client.post(
        ADD_URL,
        form_data(
            param(name="Folder", label="Folder", max_length="20", regex="[A-Za-z]+", default="Temp"),
            param(name="Notes", label="Notes", kind="textarea", required=""),
            param(name="Mode", label="Mode", kind="choice", choices="quick|Quick\nfull|Full", default="full"),
            param(name="Restart", label="Restart", kind="boolean", default="true"),
            param(name="Days", label="Days", kind="integer", min_value="1", max_value="30", default="7"),
        ),
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    action = RemoteAction.objects.get()
    assert str(action.nexthink_uid) == "07844969-1889-4de3-9026-020af94be855" and not action.enabled
    assert sorted(action.parameters.values_list("name", "kind", "default")) == [
        ("Days", "integer", "7"),
        ("Folder", "text", "Temp"),
        ("Mode", "choice", "full"),
        ("Notes", "textarea", ""),
        ("Restart", "boolean", "true"),
    ]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "Days to keep"}, "name", "letters, digits and underscores"),
        ({"name": "1Days"}, "name", "not starting with a digit"),
        ({"regex": "[a-"}, "regex", "This regex does not compile: unterminated character set"),
        ({"regex": "[0-9]+", "default": "seven"}, "default", "does not pass this parameter's own validation"),
        ({"regex": "[0-9]+", "regex_message": "Digits only.", "default": "x"}, "default", "Digits only."),
        ({"max_length": "3", "default": "abcd"}, "default", "at most 3 fit"),
        ({"kind": "integer", "min_value": "1", "max_value": "30", "default": "50"}, "default", "less than or equal"),
        ({"kind": "integer", "default": "many"}, "default", "Enter a whole number."),
        ({"kind": "integer", "min_value": "9", "max_value": "1"}, "max_value", "smaller than the minimum"),
        ({"kind": "choice", "choices": "quick\nfull", "default": "deep"}, "default", "Choose one of the options"),
        ({"kind": "choice", "choices": ""}, "choices", "at least one option"),
        ({"kind": "choice", "choices": "a\nb\na|Again"}, "choices", "repeated: a"),
        ({"kind": "choice", "choices": "|No value"}, "choices", "needs a value"),
        ({"kind": "boolean", "default": "yes"}, "default", '"true" or "false"'),
        ({"kind": "integer", "regex": "[0-9]+"}, "regex", "Only text parameters use a validation regex"),
        ({"kind": "choice", "choices": "a", "max_length": "5"}, "max_length", "Only text parameters have a max"),
        ({"kind": "text", "min_value": "1"}, "min_value", "Only integer parameters"),
        ({"kind": "text", "choices": "a\nb"}, "choices", "Only choice parameters have options"),
        ({"regex_message": "Digits."}, "regex_message", "needs a validation regex"),
    ],
)
def test_it_names_the_wrong_parameter_field_and_why(admin_client, fields, field, message):
    response = admin_client.post(ADD_URL, form_data(param(**fields)))

    assert response.status_code == 200
    errors = parameter_errors(response)
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert RemoteAction.objects.count() == 0 and ActionParameter.objects.count() == 0


def test_it_refuses_two_parameters_whose_names_differ_only_by_case(admin_client):
    response = admin_client.post(ADD_URL, form_data(param(name="Days"), param(name="days", label="Days again")))

    assert response.status_code == 200
    assert "already named “Days”" in " ".join(parameter_errors(response, 1)["name"])
    assert RemoteAction.objects.count() == 0


def test_it_refuses_a_second_action_with_the_same_remote_action_uid(admin_client):
    make_action(nexthink_uid=uuid.UUID("07844969-1889-4de3-9026-020af94be855"))

    response = admin_client.post(ADD_URL, form_data())

    assert "already exists" in " ".join(response.context["adminform"].form.errors["nexthink_uid"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout_seconds", "3601"),
        ("timeout_seconds", "0"),
        ("cooldown_minutes", "10081"),  # over a week
        ("daily_limit_per_user", "101"),
        ("daily_limit_per_user", "0"),
    ],
)
def test_it_bounds_the_numbers_a_submit_computes_with(admin_client, field, value):
    response = admin_client.post(ADD_URL, form_data(**{field: value}))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not RemoteAction.objects.exists()


def test_a_week_long_cooldown_and_100_runs_a_day_are_allowed(admin_client):
    response = admin_client.post(ADD_URL, form_data(cooldown_minutes="10080", daily_limit_per_user="100"))

    assert response.status_code == 302
    assert RemoteAction.objects.get().cooldown_minutes == 10080


# --- List tools --------------------------------------------------------------------------------
def test_it_searches_and_filters_the_action_list(admin_client, staff_group):
    storage = Category.objects.create(name="Storage")
    disk = make_action(name="Clean up disk", category=storage)
    printer = make_action(name="Fix printer", enabled=False)
    printer.groups.add(staff_group)

    def listed(**query):
        return list(admin_client.get(CHANGELIST_URL, query).context["cl"].result_list)

    assert listed(q="printer") == [printer]
    assert listed(q=str(disk.nexthink_uid)[:8]) == [disk]
    assert listed(enabled__exact="1") == [disk]
    assert listed(category__id__exact=str(storage.pk)) == [disk]
    assert listed(groups__id__exact=str(staff_group.pk)) == [printer]
    assert "Every employee" in admin_client.get(CHANGELIST_URL).content.decode()


def test_it_enables_and_disables_in_bulk(admin_client):
    a, b = make_action(enabled=False), make_action(enabled=False)

    admin_client.post(CHANGELIST_URL, {"action": "enable_actions", "_selected_action": [a.pk, b.pk]})
    assert set(RemoteAction.objects.values_list("enabled", flat=True)) == {True}

    admin_client.post(CHANGELIST_URL, {"action": "disable_actions", "_selected_action": [a.pk]})
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.enabled, b.enabled) == (False, True)


def test_it_duplicates_an_action_as_a_disabled_copy_with_a_placeholder_uid(admin_client, staff_group):
    original = make_action(name="Clean up disk", slug="clean-up-disk", featured=True, confirmation_text="Sure?")
    original.groups.add(staff_group)
    make_parameter(original, name="Days", label="Days", kind="integer", min_value=1)

    response = admin_client.post(CHANGELIST_URL, {"action": "duplicate_actions", "_selected_action": [original.pk]})

    copy = RemoteAction.objects.exclude(pk=original.pk).get()
    assert response["Location"] == reverse("admin:actions_remoteaction_change", args=[copy.pk])
    assert (copy.name, copy.slug, copy.enabled, copy.featured) == (
        "Copy of Clean up disk",
        "clean-up-disk-copy",
        False,
        False,
    )
    assert is_placeholder_uid(copy.nexthink_uid) and copy.nexthink_uid != original.nexthink_uid
    assert copy.confirmation_text == "Sure?"
    assert list(copy.groups.all()) == [staff_group]
    assert list(copy.parameters.values_list("name", "min_value")) == [("Days", 1)]
    assert original.parameters.count() == 1
    page = admin_client.get(response["Location"]).content.decode()
    assert "is a placeholder given by “Duplicate”" in page


def test_it_gives_a_second_copy_its_own_slug(admin_client):
    original = make_action(slug="clean-up-disk")
    for _ in range(2):
        admin_client.post(CHANGELIST_URL, {"action": "duplicate_actions", "_selected_action": [original.pk]})

    assert sorted(RemoteAction.objects.values_list("slug", flat=True)) == [
        "clean-up-disk",
        "clean-up-disk-copy",
        "clean-up-disk-copy-2",
    ]


def test_it_will_not_enable_a_copy_until_its_real_uid_is_set(admin_client):
    copy = make_action(enabled=False)
    admin_client.post(CHANGELIST_URL, {"action": "duplicate_actions", "_selected_action": [copy.pk]})
    copy = RemoteAction.objects.get(name__startswith="Copy of")
    change_url = reverse("admin:actions_remoteaction_change", args=[copy.pk])

    admin_client.post(CHANGELIST_URL, {"action": "enable_actions", "_selected_action": [copy.pk]})
    copy.refresh_from_db()
    assert not copy.enabled
    response = admin_client.post(
        change_url,
        form_data(name=copy.name, slug=copy.slug, nexthink_uid=str(copy.nexthink_uid), enabled="on"),
    )
    assert "set the remote action's real UID" in " ".join(response.context["adminform"].form.errors["nexthink_uid"])

    response = admin_client.post(
        change_url,
        form_data(name=copy.name, slug=copy.slug, nexthink_uid="e6bb97be-0957-49e0-9922-1a684d093858", enabled="on"),
    )
    copy.refresh_from_db()
    assert response.status_code == 302 and copy.enabled


# --- Preview -----------------------------------------------------------------------------------
def test_it_previews_the_employee_form_of_a_disabled_action(admin_client):
    action = make_action(name="Clean up disk", enabled=False, confirmation_text="Teams will close.")
    make_parameter(action, name="Days", label="Days to keep", kind="integer")
    url = reverse("admin:actions_remoteaction_preview", args=[action.pk])

    page = admin_client.get(url).content.decode()
    change_page = admin_client.get(reverse("admin:actions_remoteaction_change", args=[action.pk])).content.decode()

    assert f'href="{url}"' in change_page
    assert "<strong>Preview.</strong>" in page and "this action is disabled" in page
    assert '<label for="id_param_Days">Days to keep' in page
    assert "Teams will close." in page
    assert 'type="submit" class="button primary" disabled' in page


def test_it_keeps_the_preview_to_staff_who_may_view_actions(client, alice, bob):
    action = make_action()
    url = reverse("admin:actions_remoteaction_preview", args=[action.pk])
    bob.is_staff = True
    bob.save()
    bob.user_permissions.add(Permission.objects.get(codename="view_run"))  # reaches admin, not actions

    client.force_login(alice)
    assert client.get(url).status_code == 302  # to the admin's sign-in
    client.force_login(bob)
    assert client.get(url).status_code == 403


# --- The curators' group -----------------------------------------------------------------------
def test_it_creates_the_curators_group_with_exactly_these_permissions(curators):
    codenames = sorted(curators.permissions.values_list("content_type__app_label", "codename"))

    assert codenames == sorted(
        [
            ("actions", f"{verb}_{model}")
            for model in ("remoteaction", "actionparameter", "category")
            for verb in ("add", "change", "delete", "view")
        ]
        + [("actions", "view_run"), ("actions", "view_runattempt"), ("actions", "view_engineresult")]
        + [("auditlog", "view_logentry")]  # 0018_audit_trail: read the audit trail
    )


def test_it_lets_a_curator_curate_actions_and_read_runs_only(client, carol):
    client.force_login(carol)

    assert client.get(CHANGELIST_URL).status_code == 200
    assert client.get(ADD_URL).status_code == 200
    assert client.get(reverse("admin:actions_category_add")).status_code == 200
    assert client.get(reverse("admin:actions_run_changelist")).status_code == 200
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert client.get(reverse("admin:actions_device_changelist")).status_code == 403
    assert not carol.has_perm("actions.change_run") and not carol.has_perm("actions.delete_run")
    response = client.post(ADD_URL, form_data(param(name="Days", label="Days", kind="integer")))
    assert response.status_code == 302 and RemoteAction.objects.get().parameters.count() == 1


def test_it_keeps_employees_out_of_the_admin(client, alice):
    client.force_login(alice)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
