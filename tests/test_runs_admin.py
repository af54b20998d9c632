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
