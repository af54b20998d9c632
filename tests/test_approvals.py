"""Approvals: a run of an action that needs a second pair of eyes waits, then one approver decides."""

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from actions.insights import runs_in_flight_now
from actions.models import Run
from actions.runs.approvals import ApprovalRefused, approvals_waiting_for, run_approve, run_cancel, run_deny
from actions.runs.notify import approvers_notify
from actions.runs.reaper import runs_reap
from actions.runs.submit import RunRefused
from actions.runs.wording import status_summary
from tests.factories import make_device, make_parameter, post_run, submit
from tests.test_runs_lifecycle import at_once

Status = Run.Status
User = get_user_model()


@pytest.fixture
def approvers(db):
    return Group.objects.create(name="Security approvers")


@pytest.fixture
def dan(approvers):
    """An approver."""
    user = User.objects.create_user("dan", "dan@corp.example", "dan-pass")
    user.groups.add(approvers)
    return user


@pytest.fixture
def erin(approvers):
    """Another approver."""
    user = User.objects.create_user("erin", "erin@corp.example", "erin-pass")
    user.groups.add(approvers)
    return user


@pytest.fixture
def risky(action, approvers):
    """`action`, which now needs approval by the Security approvers."""
    action.approver_group = approvers
    action.approval_hours = 24
    action.save()
    return action


def ask(alice, risky, laptop, **kwargs) -> Run:
    return submit(alice, risky, laptop, reason="Teams will not start", **kwargs)


def test_a_run_of_an_action_that_needs_approval_waits_and_is_not_sent(
    alice, risky, laptop, broker_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = ask(alice, risky, laptop)

    run.refresh_from_db()
    assert run.status == Status.WAITING_APPROVAL
    assert status_summary(run).startswith("IT approves this action before it runs; nothing has been sent yet.")
    assert (run.reason, run.approver_group.name) == ("Teams will not start", "Security approvers")
    assert timedelta(hours=23) < run.approval_expires_at - timezone.now() <= timedelta(hours=24)
    assert broker_queue() == []


def test_it_asks_the_employee_why(alice, risky, laptop):
    with pytest.raises(RunRefused, match="say why"):
        submit(alice, risky, laptop, reason="   ")


def test_an_approval_queues_the_run_and_is_on_record(
    alice, risky, laptop, dan, broker_queue, django_capture_on_commit_callbacks
):
    run = ask(alice, risky, laptop)
    assert list(approvals_waiting_for(dan)) == [run]

    with django_capture_on_commit_callbacks(execute=True):
        run_approve(run_id=run.pk, approver=dan, comment="OK for today")

    run.refresh_from_db()
    assert (run.status, run.decided_by, run.decision_comment) == (Status.QUEUED, dan, "OK for today")
    assert broker_queue() == [str(run.pk)]
    (entry,) = LogEntry.objects.get_for_object(run)
    assert (entry.actor, entry.additional_data["event"]) == (dan, "approval_granted")
    assert entry.changes_dict == {"status": ["Waiting for approval", "Queued"]}


def test_a_denial_ends_the_run_unsent_with_who_and_why(alice, risky, laptop, dan, broker_queue):
    run = ask(alice, risky, laptop)

    run_deny(run_id=run.pk, approver=dan, comment="Use the VPN fix first")

    run.refresh_from_db()
    assert (run.status, run.decided_by, run.decision_comment) == (Status.DENIED, dan, "Use the VPN fix first")
    assert run.finished_at is not None and broker_queue() == []
    assert LogEntry.objects.get_for_object(run).get().additional_data["event"] == "approval_denied"
    assert status_summary(run) == "dan did not approve it, so nothing was sent. Their comment: “Use the VPN fix first”"


def test_nobody_approves_their_own_run_nor_one_of_a_group_they_are_not_in(alice, bob, risky, laptop, approvers):
    alice.groups.add(approvers)
    run = ask(alice, risky, laptop)

    with pytest.raises(ApprovalRefused, match="your own request"):
        run_approve(run_id=run.pk, approver=alice)
    with pytest.raises(ApprovalRefused, match="not one of its approvers"):
        run_deny(run_id=run.pk, approver=bob)
    assert list(approvals_waiting_for(alice)) == []
    assert Run.objects.get(pk=run.pk).status == Status.WAITING_APPROVAL


def test_the_second_decision_is_told_the_first_won(alice, risky, laptop, dan, erin):
    run = ask(alice, risky, laptop)
    run_deny(run_id=run.pk, approver=dan)

    with pytest.raises(ApprovalRefused, match="Already decided by dan"):
        run_approve(run_id=run.pk, approver=erin)
    assert Run.objects.get(pk=run.pk).status == Status.DENIED


def test_approving_after_the_action_was_withdrawn_ends_the_run_unsent(alice, risky, laptop, dan, broker_queue):
    run = ask(alice, risky, laptop)
    risky.enabled = False
    risky.save()

    with pytest.raises(ApprovalRefused, match="no longer run as asked"):
        run_approve(run_id=run.pk, approver=dan)

    run.refresh_from_db()
    assert (run.status, run.error_code, run.decided_by) == (Status.FAILED, "NO_LONGER_ALLOWED", dan)
    assert "withdrew" in run.error_message and broker_queue() == []


def test_approving_after_the_device_changed_hands_ends_the_run_unsent(alice, bob, risky, laptop, dan):
    run = ask(alice, risky, laptop)
    laptop.owner = bob
    laptop.save()

    with pytest.raises(ApprovalRefused, match="no longer registered to you"):
        run_approve(run_id=run.pk, approver=dan)
    assert Run.objects.get(pk=run.pk).status == Status.FAILED


def test_approving_after_the_parameters_changed_ends_the_run_unsent(alice, risky, laptop, dan):
    run = ask(alice, risky, laptop)
    mode = risky.parameters.get()
    mode.kind, mode.choices = "choice", "quick"  # "full" is no longer a choice
    mode.save()

    with pytest.raises(ApprovalRefused, match="no longer run as asked"):
        run_approve(run_id=run.pk, approver=dan)
    run.refresh_from_db()
    assert run.status == Status.FAILED and "Mode" in run.error_message


def test_a_mac_run_is_approved_without_the_windows_only_inputs_it_never_had(alice, risky, dan, broker_queue):
    make_parameter(risky, name="ServiceName", label="Service", required=True, used_by_macos=False)
    mac = make_device(alice, platform="macos")
    run = ask(alice, risky, mac)  # the form asks a Mac for none of the Windows inputs

    run_approve(run_id=run.pk, approver=dan)

    assert Run.objects.get(pk=run.pk).status == Status.QUEUED


def test_the_sweep_ends_a_request_nobody_decided_in_time(alice, risky, laptop, dan):
    late = ask(alice, risky, laptop)
    Run.objects.filter(pk=late.pk).update(approval_expires_at=timezone.now() - timedelta(seconds=1))
    on_time = submit(alice, risky, laptop, reason="Again")

    runs_reap()

    late.refresh_from_db()
    assert (late.status, late.decided_by) == (Status.APPROVAL_EXPIRED, None)
    assert "Nobody approved" in late.error_message
    assert Run.objects.get(pk=on_time.pk).status == Status.WAITING_APPROVAL
    with pytest.raises(ApprovalRefused, match="expired"):
        run_approve(run_id=late.pk, approver=dan)


def test_an_approved_run_is_not_failed_for_the_time_it_waited(alice, risky, laptop, dan, settings):
    run = ask(alice, risky, laptop)
    Run.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.RUN_QUEUE_MAX_AGE_SECONDS + 60)
    )
    run_approve(run_id=run.pk, approver=dan)

    runs_reap()

    assert Run.objects.get(pk=run.pk).status == Status.QUEUED


def test_monitoring_counts_an_approved_run_s_wait_from_its_approval(alice, risky, laptop, dan):
    run = ask(alice, risky, laptop)
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=20))
    run_approve(run_id=run.pk, approver=dan)

    ((status, count, oldest),) = runs_in_flight_now()

    assert (status, count) == (Status.QUEUED, 1)
    assert timezone.now() - oldest < timedelta(minutes=5)  # not the 20 h it waited for a decision


def test_a_waiting_request_counts_towards_the_in_flight_cap_and_can_be_cancelled(alice, risky, laptop, settings):
    settings.RUN_MAX_IN_FLIGHT_PER_USER = 1
    run = ask(alice, risky, laptop)

    with pytest.raises(RunRefused, match="1 run waiting"):
        ask(alice, risky, laptop)
    assert run_cancel(run_id=run.pk, user=alice)

    assert Run.objects.get(pk=run.pk).status == Status.CANCELLED
    ask(alice, risky, laptop)  # no longer in flight


@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_once_one_decides(alice, risky, laptop, dan, erin):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL (CI's second run, DATABASE_URL=postgres://...)")
    run = ask(alice, risky, laptop)
    told = []

    def decide(decision, approver):
        try:
            decision(run_id=run.pk, approver=approver)
        except ApprovalRefused as refusal:
            told.append(str(refusal))

    at_once([lambda: decide(run_approve, dan), lambda: decide(run_deny, erin)])

    run.refresh_from_db()
    assert len(told) == 1 and "Already decided by" in told[0]
    assert run.status in (Status.QUEUED, Status.DENIED)
    assert LogEntry.objects.get_for_object(run).count() == 1


def test_the_action_page_asks_why_and_the_run_page_says_it_waits(alice_client, risky, laptop):
    refused = post_run(alice_client, risky, param_Mode="full")
    assert refused.status_code == 200 and "Say why you need this" in refused.content.decode()

    response = post_run(alice_client, risky, param_Mode="full", reason="Teams will not start")

    run = Run.objects.get()
    assert response.status_code == 302 and (run.status, run.reason) == (Status.WAITING_APPROVAL, "Teams will not start")
    assert "Waiting for approval" in alice_client.get(run.get_absolute_url()).content.decode()


# --- The approvers' page, their e-mail, the employee's cancel --------------------------------------
def test_the_approvers_page_reads_every_device_s_recent_runs_at_once(client, alice, risky, dan):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            assert client.get(reverse("approvals")).status_code == 200
        return len(seen)

    client.force_login(dan)
    ask(alice, risky, make_device(alice))
    one = queries()
    for _ in range(3):
        device = make_device(alice)
        submit(alice, risky, device, requested_by=User.objects.create_superuser(f"it{device.pk}", "", "x"))
        ask(alice, risky, device)
    page = client.get(reverse("approvals")).content.decode()

    assert queries() == one and page.count("Clear Teams cache for alice") == 4


def test_the_approvers_page_shows_the_request_and_one_click_decides(client, alice, risky, laptop, dan, erin):
    earlier = submit(alice, risky, laptop, requested_by=User.objects.create_superuser("it", "it@corp.example", "x"))
    run = ask(alice, risky, laptop)
    client.force_login(dan)

    page = client.get(reverse("approvals")).content.decode()
    assert all(text in page for text in ("Clear Teams cache for alice", "LAPTOP-ALICE", "Teams will not start"))
    assert "<dt>Mode</dt><dd>full</dd>" in page
    # The earlier run's status in the employee's words (the run page's), not the model's technical name.
    assert earlier.status == Status.QUEUED and "Waiting to be sent" in page and "Queued" not in page
    response = client.post(reverse("approval_decide", args=[run.pk]), {"decision": "approve", "comment": "Fine"})

    assert response.status_code == 302 and Run.objects.get(pk=run.pk).status == Status.QUEUED
    decision = LogEntry.objects.get_for_object(run).get()
    assert (decision.actor, decision.remote_addr, decision.additional_data["comment"]) == (dan, "127.0.0.1", "Fine")
    client.force_login(erin)
    late = client.post(reverse("approval_decide", args=[run.pk]), {"decision": "deny"}, follow=True)
    assert "Already decided by dan" in late.content.decode()
    assert "Nothing waits for your approval." in late.content.decode()


def test_the_approvers_are_emailed_once_with_a_link(alice, risky, laptop, dan, erin, mailoutbox, approvers):
    alice.groups.add(approvers)  # an approver asking: not e-mailed about their own request
    run = ask(alice, risky, laptop)

    assert approvers_notify(run_id=run.pk) == 2
    assert approvers_notify(run_id=run.pk) == 0  # a second delivery of the task
    [mail] = mailoutbox
    assert sorted(mail.bcc) == ["dan@corp.example", "erin@corp.example"] and mail.to == []
    assert "Teams will not start" in mail.body and reverse("approvals") in mail.body


def test_the_reaper_mails_the_approvers_once_when_the_task_was_lost(alice, risky, laptop, dan, mailoutbox):
    run = ask(alice, risky, laptop)  # its on-commit task never ran: the broker lost it

    runs_reap()
    assert mailoutbox == []  # too fresh: the task may still come
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    runs_reap()
    runs_reap()
    assert approvers_notify(run_id=run.pk) == 0  # the task, late: already sent

    [mail] = mailoutbox
    assert mail.bcc == ["dan@corp.example"] and "Teams will not start" in mail.body


def test_the_menu_links_approvers_to_their_requests_with_how_many_wait(client, alice, risky, laptop, dan):
    ask(alice, risky, laptop)
    client.force_login(alice)
    assert reverse("approvals") not in client.get(reverse("catalog")).content.decode()

    client.force_login(dan)
    page = client.get(reverse("my_runs")).content.decode()
    assert f'<a href="{reverse("approvals")}">Approvals <span class="badge badge-count">1<' in page


def test_the_employee_cancels_from_the_run_page(alice_client, alice, risky, laptop):
    run = ask(alice, risky, laptop)
    assert "Cancel this request" in alice_client.get(run.get_absolute_url()).content.decode()

    alice_client.post(reverse("run_cancel", args=[run.pk]))

    run.refresh_from_db()
    assert run.status == Status.CANCELLED and "You cancelled" in status_summary(run)


def test_the_catalog_export_carries_the_approval_and_an_import_needs_the_group(risky, approvers):
    from actions.catalog.transfer import export_catalog, import_catalog

    risky.approval_hours = 8
    risky.save()
    data = export_catalog()
    [entry] = data["actions"]
    assert (entry["approver_group"], entry["approval_hours"]) == ("Security approvers", 8)

    approvers.name = "Renamed"
    approvers.save()
    report = import_catalog(data)
    [(_label, reason)] = report.rejected
    assert reason == "no such group here: Security approvers (create it first)"


def test_insights_count_approvals_and_the_median_time_to_decide(alice, risky, laptop, dan, admin_client):
    from actions.insights import approval_figures, default_period

    granted, denied, expired, waiting = (ask(alice, risky, laptop) for _ in range(4))
    run_approve(run_id=granted.pk, approver=dan)
    run_deny(run_id=denied.pk, approver=dan)
    Run.objects.filter(pk=expired.pk).update(approval_expires_at=timezone.now() - timedelta(seconds=1))
    runs_reap()
    now = timezone.now()
    Run.objects.filter(pk=granted.pk).update(created_at=now - timedelta(hours=2), decided_at=now)
    Run.objects.filter(pk=denied.pk).update(created_at=now - timedelta(hours=4), decided_at=now)
    submit(alice, risky, laptop, requested_by=dan)  # IT's run for alice: no approval asked

    figures = approval_figures(default_period())

    assert (figures.asked, figures.granted, figures.denied, figures.expired, figures.waiting) == (4, 1, 1, 1, 1)
    assert figures.median_decision_seconds == pytest.approx(3 * 3600, abs=5)
    page = admin_client.get(reverse("admin:actions_runinsight_changelist")).content.decode()
    assert "Median time to decide" in page and "3 h 0 min" in page
