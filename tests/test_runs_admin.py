"""Runs in admin: read-only history; retry makes a new run linked to the old one."""

from django.urls import reverse
from django.utils import timezone

from actions.models import Device, Run, Ticket
from actions.runs.submit import run_submit
from actions.uids import run_reference
from tests.factories import make_action, make_device, make_parameter, make_sim_action, submit


def failed_run(user, action=None):
    if action is None:
        action = make_sim_action()
        make_parameter(action, name="Mode", label="Mode")
    run = run_submit(user=user, action=action, device=make_device(user), params={"Mode": "x"})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FAILED, error_code="UNAVAILABLE")
    return run


def retry(client, run, **kwargs):
    """The admin's "Retry" action on the run, as `client`."""
    return client.post(
        reverse("admin:actions_run_changelist"), {"action": "retry_runs", "_selected_action": [str(run.pk)]}, **kwargs
    )


def test_retry_makes_a_new_linked_run_for_the_same_user(admin_client, admin_user, alice):
    old = failed_run(alice)

    response = retry(admin_client, old)

    assert response.status_code == 302
    new = Run.objects.exclude(pk=old.pk).get()
    assert (new.retry_of_id, new.user, new.requested_by, new.status) == (old.pk, alice, admin_user, "queued")
    assert new.params == {"Mode": "x"}


def test_retry_refuses_parameters_the_action_no_longer_has(admin_client, alice):
    old = failed_run(alice)
    old.action.parameters.all().delete()

    response = retry(admin_client, old, follow=True)

    assert Run.objects.count() == 1
    assert "has no parameter Mode" in response.content.decode()


def test_retry_skips_runs_that_did_not_fail(admin_client, alice):
    run = run_submit(user=alice, action=make_sim_action(), device=make_device(alice), params={})

    retry(admin_client, run)

    assert Run.objects.count() == 1


def test_runs_cannot_be_edited_in_admin(admin_client, alice):
    run = failed_run(alice)

    page = admin_client.get(reverse("admin:actions_run_change", args=[run.pk])).content.decode()
    admin_client.post(reverse("admin:actions_run_change", args=[run.pk]), {"status": "succeeded"})

    assert 'name="status"' not in page
    assert Run.objects.get(pk=run.pk).status == Run.Status.FAILED


def test_runs_are_searchable_by_request_uid(admin_client, alice):
    run = failed_run(alice)
    failed_run(alice, run.action)

    response = admin_client.get(reverse("admin:actions_run_changelist"), {"q": str(run.pk)})

    assert [r.pk for r in response.context["cl"].result_list] == [run.pk]


def test_retry_needs_the_permission_dispatch_checks(client, alice, carol):
    # A curator may view runs, but may not run an action on someone's device: no retry for them.
    from django.contrib.auth.models import Permission

    carol.user_permissions.add(Permission.objects.get(codename="add_run"))
    old = failed_run(alice)
    client.force_login(carol)

    retry(client, old)

    assert Run.objects.count() == 1


def test_retry_by_it_staff_with_the_permission_makes_a_run_dispatch_accepts(client, alice, carol):
    from django.contrib.auth.models import Permission

    carol.user_permissions.add(Permission.objects.get(codename="run_action_on_any_device"))
    old = failed_run(alice)
    client.force_login(carol)

    retry(client, old)

    new = Run.objects.exclude(pk=old.pk).get()
    assert (new.requested_by, new.retry_of_id) == (carol, old.pk)


def test_retry_revalidates_parameters_against_todays_choices(admin_client, alice):
    action = make_sim_action()
    make_parameter(action, name="Mode", label="Mode", kind="choice", choices="quick\nfull", required=True)
    old = run_submit(user=alice, action=action, device=make_device(alice), params={"Mode": "full"})
    Run.objects.filter(pk=old.pk).update(status=Run.Status.FAILED)
    action.parameters.update(choices="quick\ndeep")  # "full" is no longer offered

    response = retry(admin_client, old, follow=True)

    assert Run.objects.count() == 1
    assert "Mode: Choose one of the options in the list." in response.content.decode()


def test_runs_are_searchable_by_user_device_and_action(admin_client, alice, bob):
    mine = failed_run(alice)
    theirs = failed_run(bob, mine.action)
    changelist = reverse("admin:actions_run_changelist")

    def found(term):
        return {r.pk for r in admin_client.get(changelist, {"q": term}).context["cl"].result_list}

    assert found("alice") == {mine.pk} and found("BOB@corp.example") == {theirs.pk}
    assert found(mine.device_uid.upper()) == {mine.pk}
    assert found(theirs.device_name[:7]) >= {theirs.pk}
    assert found("Clear Teams") == {mine.pk, theirs.pk}
    assert found("nobody-at-all") == set()


def test_a_device_name_in_full_finds_that_device_only_in_any_case(admin_client, alice, bob):
    short = failed_run(alice)
    Run.objects.filter(pk=short.pk).update(device_name="LAPTOP-A")
    Device.objects.filter(pk=short.device_id).update(name="LAPTOP-A")
    longer = failed_run(bob, short.action)
    Run.objects.filter(pk=longer.pk).update(device_name="LAPTOP-ALICE2")
    changelist = reverse("admin:actions_run_changelist")

    def found(term):
        return {r.pk for r in admin_client.get(changelist, {"q": term}).context["cl"].result_list}

    assert found("laptop-a") == {short.pk}  # the device named so, not every name that starts so
    assert found("LAPTOP-AL") == {longer.pk}  # no device named so: names that start so
    assert found("LAPTOP-ALICE2") == {longer.pk}  # a name only runs remember (no device has it now)
    assert found("bob") == {longer.pk}  # a user's name comes first


def test_the_runs_list_counts_no_more_than_it_shows(admin_client, alice, monkeypatch):
    from actions.admin import runs as runs_admin

    monkeypatch.setattr(runs_admin, "COUNT_CAP", 3)
    first = failed_run(alice)
    for _ in range(4):
        failed_run(alice, first.action)

    response = admin_client.get(reverse("admin:actions_run_changelist"))

    assert response.context["cl"].result_count == 3
    assert response.status_code == 200


def test_a_run_s_checkbox_is_django_s_own(admin_client, alice, laptop, action):
    from django.contrib import admin as django_admin

    run = submit(alice, action, laptop)
    model_admin = django_admin.site.get_model_admin(Run)

    ours = model_admin.action_checkbox(run)

    assert ours == django_admin.ModelAdmin.action_checkbox(model_admin, run)
    assert ours in admin_client.get(reverse("admin:actions_run_changelist")).content.decode()


def test_runs_are_searchable_by_the_reference_the_employee_reads_out(admin_client, alice):
    ids = [
        "8d41162a-ffff-4fff-bfff-ffffffffffff",
        "8d41162b-0000-4000-8000-000000000000",
        "8d41162c-0000-4000-8000-000000000000",
    ]
    first = failed_run(alice)
    runs = [first, failed_run(alice, first.action), failed_run(alice, first.action)]
    for run, new_id in zip(runs, ids, strict=True):
        Run.objects.filter(pk=run.pk).update(id=new_id)
    changelist = reverse("admin:actions_run_changelist")

    def found(term):
        return sorted(str(r.pk) for r in admin_client.get(changelist, {"q": term}).context["cl"].result_list)

    assert run_reference(ids[1]) == "FMD-8D41162B"
    assert found("FMD-8D41162B") == [ids[1]]
    assert found(" fmd-8d41162b ") == [ids[1]]  # as typed from the phone, any case
    assert found("FMD-8D41") == ids  # its start: every run it may be
    assert "FMD-8D41162B" in admin_client.get(reverse("admin:actions_run_change", args=[ids[1]])).content.decode()


def ticket_for(run, number):
    return Ticket.objects.create(run=run, backend="servicenow", number=number, requested_at=timezone.now())


def test_runs_are_searchable_by_their_ticket_number_in_any_case(admin_client, alice):
    run = failed_run(alice)
    other = failed_run(alice, run.action)
    ticket_for(run, "INC0010001")
    ticket_for(other, "INC0010002")

    response = admin_client.get(reverse("admin:actions_run_changelist"), {"q": "inc0010001"})

    assert [r.pk for r in response.context["cl"].result_list] == [run.pk]


def test_tickets_are_searchable_by_number_reference_employee_and_action(admin_client, alice, bob):
    mine = failed_run(alice)
    vpn = make_action(name="Reset VPN")
    make_parameter(vpn, name="Mode", label="Mode")
    theirs = failed_run(bob, vpn)
    first, second = ticket_for(mine, "INC0010001"), ticket_for(theirs, "INC0020002")
    changelist = reverse("admin:actions_ticket_changelist")

    def found(term):
        return {t.pk for t in admin_client.get(changelist, {"q": term}).context["cl"].result_list}

    assert found("inc0010001") == {first.pk}
    assert found("INC00") == {first.pk, second.pk}  # a number's start
    assert found(run_reference(theirs.pk)) == {second.pk}
    assert found("bob@corp.example") == {second.pk}
    assert found("reset vpn") == {second.pk}  # the action's name, any case
    assert found("Clear") == {first.pk}  # an action name's start
    assert found("nothing-like-it") == set()


def listed_runs(alice, bob, admin_user, count, action=None):
    """`count` runs of different kinds: IT's retry, an unknown outcome, a name HTML would misread, a
    run whose device has no name (its label falls back to the device UID)."""
    first = failed_run(alice, action)
    made = [first]
    for index in range(count - 1):
        made.append(failed_run([alice, bob][index % 2], first.action))
    Run.objects.filter(pk=made[0].pk).update(requested_by=admin_user, attempts=3)
    Run.objects.filter(pk=made[-1].pk).update(status=Run.Status.UNKNOWN, device_name="<b>Bob's & co</b>")
    if count > 2:
        Run.objects.filter(pk=made[1].pk).update(device_name="", action_name="")
    return made


def test_the_runs_list_rows_are_django_s_own_cell_for_cell(admin_client, alice, bob, admin_user):
    from django.contrib.admin.templatetags.admin_list import results

    from actions.templatetags.admin_rows import fast_results

    runs = listed_runs(alice, bob, admin_user, 5)
    changelist = reverse("admin:actions_run_changelist")
    pages = {}
    # Plain, searched, filtered and sorted: the links keep the filters, a date first or not.
    for query in ({}, {"q": "alice"}, {"status__exact": "unknown"}, {"o": "-3.1"}, {"q": "Clear Teams", "o": "2"}):
        response = admin_client.get(changelist, query)
        cl = response.context["cl"]

        django_s = ["".join(row) for row in results(cl)]
        ours = ["".join(row) for row in fast_results(cl)]

        assert ours == django_s and len(ours) >= 1, query
        page = pages[tuple(query.values())] = response.content.decode()
        assert all(f"<tr>{row}</tr>" in page for row in ours), query
    assert pages[()].count('class="action-select"') == len(runs)
    assert "&lt;b&gt;Bob&#x27;s &amp; co&lt;/b&gt;" in pages[()]
    assert "_changelist_filters=status__exact%3Dunknown" in pages[("unknown",)]


def test_the_runs_list_reads_the_columns_it_shows_in_one_query_whatever_the_rows(
    admin_client, alice, bob, admin_user, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    changelist = reverse("admin:actions_run_changelist")
    action = listed_runs(alice, bob, admin_user, 2)[0].action
    with CaptureQueriesContext(connection) as few:
        admin_client.get(changelist)
    listed_runs(alice, bob, admin_user, 6, action)

    with django_assert_num_queries(len(few)) as many:
        response = admin_client.get(changelist)

    assert len(response.context["cl"].result_list) == 8
    # The rows' query: the runs with their users (the count and the filters join nothing).
    (rows,) = [q["sql"] for q in many.captured_queries if 'FROM "actions_run"' in q["sql"] and "JOIN" in q["sql"]]
    assert '"actions_run"."params"' not in rows and '"actions_run"."outputs"' not in rows
    assert '"auth_user"."password"' not in rows


def test_a_run_s_date_is_written_as_django_writes_it_in_any_language_and_zone():
    from datetime import UTC, datetime, timedelta

    from django.contrib.admin.utils import display_for_field
    from django.utils import timezone, translation
    from django.utils.html import conditional_escape

    from actions.templatetags.admin_rows import datetime_text, format_layout

    field = Run._meta.get_field("created_at")
    # Around midnight and noon, over a change to summer time, minutes and seconds apart.
    start = datetime(2026, 3, 28, 22, 59, 30, tzinfo=UTC)
    moments = [start + timedelta(minutes=17 * n, seconds=n) for n in range(200)]
    moments += [datetime(2026, 6, 1, hour, minute, tzinfo=UTC) for hour in (0, 10, 11, 12, 23) for minute in (0, 30)]
    shown = 0
    for language in ("en-us", "de", "fr", "ja", "pt-br", "ru"):
        for zone in ("UTC", "Europe/Zurich", "America/New_York", "Asia/Kolkata"):
            with translation.override(language), timezone.override(zone):
                text = datetime_text(field, lambda value: conditional_escape(display_for_field(value, field, "-")))
                for moment in moments:
                    django_s = conditional_escape(display_for_field(moment, field, "-"))
                    assert text(Run(created_at=moment)) == (django_s, False), (language, zone, moment)
                    shown += 1
    assert shown == 24 * len(moments)
    # A format with seconds or the zone is written whole, as Django writes it.
    assert format_layout("N j, Y, P") is not None
    assert format_layout("Y-m-d H:i:s") is None and format_layout("j M Y H:i T") is None
    assert format_layout(r"\Y\e\a\r: Y {H}") == (r"Year: {0} {{{1}}}", ["Y"], ["H"])
