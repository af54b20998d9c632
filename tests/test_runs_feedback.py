"""Closing the loop: "Did this fix it?", and an e-mail when a run ends after its page was closed."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from actions.models import Preferences, Run
from actions.runs.dispatch import run_dispatch
from actions.runs.notify import runs_notify
from actions.runs.reaper import runs_reap
from actions.runs.submit import run_submit
from tests.factories import EMEA, make_device, make_sim_action

Status = Run.Status


@pytest.fixture
def emea_teams_action(db):
    """The simulator's "Clear Teams cache" of no parameter, allowed on engine-emea only."""
    action = make_sim_action(slug="clear-teams-cache")
    action.engines.create(database_uid=EMEA, name="engine-emea")
    return action


@pytest.fixture
def alice_run(alice, emea_teams_action):
    return run_submit(user=alice, action=emea_teams_action, device=make_device(alice, name="LAPTOP-ALICE"), params={})


def finish(run, status=Status.SENT, **fields):
    Run.objects.filter(pk=run.pk).update(status=status, finished_at=timezone.now(), **fields)
    run.refresh_from_db()
    return run


def answer(client, run, fixed, comment=""):
    return client.post(reverse("run_feedback", args=[run.pk]), {"fixed": fixed, "comment": comment})


# --- "Did this fix it?" --------------------------------------------------------------------------
def test_a_sent_run_asks_whether_it_fixed_the_problem_and_stores_the_answer(client, alice, alice_run):
    finish(alice_run)
    client.force_login(alice)
    page = client.get(alice_run.get_absolute_url()).content.decode()
    assert "Did this fix your problem?" in page and "data-show-when-feedback hidden" not in page

    response = answer(client, alice_run, "no", "Teams still crashes")

    alice_run.refresh_from_db()
    assert response.status_code == 302
    assert (alice_run.fixed, alice_run.feedback_comment) == (False, "Teams still crashes")
    assert alice_run.feedback_at is not None


def test_the_answer_can_be_changed(client, alice, alice_run):
    finish(alice_run)
    client.force_login(alice)
    answer(client, alice_run, "no")

    answer(client, alice_run, "yes")

    alice_run.refresh_from_db()
    assert alice_run.fixed is True
    assert "You said: <strong>yes, it fixed the problem" in client.get(alice_run.get_absolute_url()).content.decode()


def test_a_run_that_did_not_reach_the_device_asks_nothing(client, alice, alice_run):
    finish(alice_run, Status.FAILED, error_message="Nothing was sent.")
    client.force_login(alice)

    response = answer(client, alice_run, "yes")

    alice_run.refresh_from_db()
    assert alice_run.fixed is None
    assert response.status_code == 302
    assert "data-show-when-feedback hidden" in client.get(alice_run.get_absolute_url()).content.decode()


def test_an_answer_after_the_window_is_refused(client, alice, alice_run, settings):
    finish(alice_run)
    Run.objects.filter(pk=alice_run.pk).update(
        finished_at=timezone.now() - timedelta(days=settings.RUN_FEEDBACK_DAYS + 1)
    )
    client.force_login(alice)

    answer(client, alice_run, "yes")

    assert Run.objects.get(pk=alice_run.pk).fixed is None


def test_nobody_else_may_answer(client, bob, alice_run):
    finish(alice_run)
    client.force_login(bob)

    assert answer(client, alice_run, "yes").status_code == 404
    assert Run.objects.get(pk=alice_run.pk).fixed is None


@pytest.mark.parametrize("comment", ["x" * 1001, "bad\x1bescape"])
def test_a_comment_must_be_bounded_and_printable(client, alice, alice_run, comment):
    finish(alice_run)
    client.force_login(alice)

    answer(client, alice_run, "no", comment)

    assert Run.objects.get(pk=alice_run.pk).fixed is None


def test_my_runs_links_to_the_question_while_it_is_open(client, alice, alice_run):
    finish(alice_run)
    client.force_login(alice)

    assert "Did this fix it?" in client.get(reverse("my_runs")).content.decode()

    answer(client, alice_run, "yes")

    assert "Did this fix it?" not in client.get(reverse("my_runs")).content.decode()


# --- E-mail when a run ends after its page was closed ----------------------------------------------
@pytest.fixture
def no_wait(settings):
    """The pass mails a run as soon as it ended (it waits RUN_NOTIFY_DELAY_SECONDS otherwise)."""
    settings.RUN_NOTIFY_DELAY_SECONDS = 0


def test_a_run_that_ends_puts_no_task_on_the_broker(
    alice_run, use_simulator, broker_queue, django_capture_on_commit_callbacks, settings
):
    from pathlib import Path

    with django_capture_on_commit_callbacks(execute=True):
        run_dispatch(run_id=alice_run.pk)

    # The reaper's pass mails it if its page does not show the end: no task per run to find that out.
    assert Run.objects.get(pk=alice_run.pk).status == Run.Status.SENT
    assert list((Path(settings.BROKER_DIR) / "queue").glob("*.msg")) == []


def test_it_mails_the_employee_when_the_page_did_not_show_the_end(alice_run, mailoutbox, settings, no_wait):
    settings.PORTAL_BASE_URL = "https://fix.corp.example"
    finish(alice_run)

    assert runs_notify() == 1

    [mail] = mailoutbox
    assert mail.to == ["alice@corp.example"]
    assert mail.subject == "Clear Teams cache on LAPTOP-ALICE: Accepted by Nexthink"
    assert f"https://fix.corp.example/runs/{alice_run.pk}/#feedback" in mail.body
    assert "Did this fix your problem?" in mail.body and "https://fix.corp.example/preferences/" in mail.body


def test_the_reapers_pass_mails_it(alice_run, mailoutbox, no_wait):
    finish(alice_run)

    runs_reap()

    assert len(mailoutbox) == 1 and Run.objects.get(pk=alice_run.pk).notified_at is not None


def test_it_waits_until_the_page_had_time_to_show_the_end(alice_run, mailoutbox, settings):
    settings.RUN_NOTIFY_DELAY_SECONDS = 20
    [run] = ended_runs(alice_run, 5)  # an open page shows it within seconds

    assert runs_notify() == 0
    Run.objects.filter(pk=run.pk).update(finished_at=timezone.now() - timedelta(seconds=21))
    assert runs_notify() == 1


def test_two_passes_send_one_mail(alice_run, mailoutbox, no_wait):
    finish(alice_run)

    assert (runs_notify(), runs_notify()) == (1, 0)

    assert len(mailoutbox) == 1
    assert Run.objects.get(pk=alice_run.pk).notified_at is not None


def test_a_pass_that_read_the_run_before_another_claimed_it_sends_nothing(alice_run, mailoutbox, monkeypatch, no_wait):
    """Two passes at once (the lock held too long): both read the run unmailed; only the claim that lands sends."""
    finish(alice_run)
    real_filter = Run.objects.filter
    second = []

    def filter_then_race(*args, **kwargs):
        if "notified_at__isnull" in kwargs and "pk" in kwargs and not second:  # the first is about to claim...
            second.append(None)
            second[0] = runs_notify()  # ...and the second gets in first
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(Run.objects, "filter", filter_then_race)

    first = runs_notify()

    assert (first, second) == (0, [1])
    assert len(mailoutbox) == 1


def test_a_send_that_fails_after_the_claim_is_not_tried_again(alice_run, mailoutbox, monkeypatch, no_wait):
    finish(alice_run)

    def smtp_down(*args, **kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr("actions.runs.notify.send_mail", smtp_down)
    assert runs_notify() == 0
    monkeypatch.undo()

    assert runs_notify() == 0  # at most once: the server may have taken the first
    assert mailoutbox == []


def test_no_mail_when_the_page_showed_the_end(client, alice, alice_run, mailoutbox, django_assert_num_queries, no_wait):
    finish(alice_run)
    client.force_login(alice)
    client.get(reverse("run_status", args=[alice_run.pk]))  # the open page polls and shows it

    # The common case of every run watched to its end: one read of the runs to mail, which finds none.
    with django_assert_num_queries(1):
        assert runs_notify() == 0
    assert mailoutbox == []


def test_no_mail_for_an_employee_who_opted_out(client, alice, alice_run, mailoutbox, no_wait):
    client.force_login(alice)
    response = client.post(reverse("preferences"), {})  # the box unticked
    assert response.status_code == 302
    assert Preferences.objects.get(user=alice).email_when_run_ends is False
    finish(alice_run)

    assert runs_notify() == 0
    assert mailoutbox == []


def test_no_mail_for_an_employee_without_an_address_or_no_longer_active(alice, alice_run, mailoutbox, no_wait):
    finish(alice_run)
    type(alice).objects.filter(pk=alice.pk).update(email="")
    assert runs_notify() == 0
    type(alice).objects.filter(pk=alice.pk).update(email="alice@corp.example", is_active=False)
    assert runs_notify() == 0
    assert mailoutbox == []


def test_a_failed_run_mail_does_not_ask_whether_it_fixed_anything(alice_run, mailoutbox, no_wait):
    finish(alice_run, Status.FAILED, error_message="Nothing was sent. Please contact IT.")

    runs_notify()

    assert "Did this fix" not in mailoutbox[0].body and "Nothing was sent. Please contact IT." in mailoutbox[0].body


def test_no_mail_before_the_run_ends(alice_run, mailoutbox, no_wait):
    assert runs_notify() == 0
    assert mailoutbox == []


def test_no_mail_without_a_mailer(alice_run, mailoutbox, settings, no_wait):
    settings.MAILERS = {}  # production without EMAIL_URL
    finish(alice_run)

    assert runs_notify() == 0


def test_no_mail_about_a_run_that_ended_more_than_a_day_ago(alice_run, mailoutbox, settings):
    settings.RUN_NOTIFY_DELAY_SECONDS = 20
    ended_runs(alice_run, 24 * 3600 + 60)  # e.g. no worker for a day: old news by then

    assert runs_notify() == 0


def test_a_pass_that_reads_a_full_batch_leaves_its_last_employee_to_the_next(alice, bob, alice_run, monkeypatch):
    from actions.runs import notify

    monkeypatch.setattr(notify, "NOTIFY_BATCH", 3)
    now = timezone.now()
    rows = [(1, alice.pk, now, True), (2, alice.pk, now, True), (3, bob.pk, now, True)]
    monkeypatch.setattr(notify, "_unseen_ends", lambda: rows)
    mailed = []
    monkeypatch.setattr(notify, "_mail_burst", lambda pks: mailed.append(pks) or True)

    assert notify.runs_notify() == 1
    assert mailed == [[1, 2]]  # bob's runs may go on past the batch


# --- One e-mail per burst of runs that ended while the employee was away ---------------------------
def ended_runs(run, *seconds_ago, **fields):
    """Copies of alice's run that ended this many seconds ago (the first is the run itself)."""
    import uuid

    runs = []
    for n, ago in enumerate(seconds_ago):
        copy = Run.objects.get(pk=run.pk)
        if n:
            copy.pk, copy.idempotency_key = uuid.uuid4(), ""
            copy.save(force_insert=True)
        Run.objects.filter(pk=copy.pk).update(
            status=Status.SENT, finished_at=timezone.now() - timedelta(seconds=ago), **fields
        )
        runs.append(copy)
    return runs


def test_three_runs_that_end_together_give_one_mail_listing_all_three(alice_run, mailoutbox, settings):
    settings.RUN_NOTIFY_DELAY_SECONDS = 20
    runs = ended_runs(alice_run, 30, 25, 21)

    sent = [runs_notify(), runs_notify()]  # and a second pass finds nothing left

    assert sent == [1, 0]
    [mail] = mailoutbox
    assert mail.subject == "3 of your actions ended"
    assert all(f"/runs/{run.pk}/#feedback" in mail.body for run in runs)
    assert Run.objects.filter(pk__in=[r.pk for r in runs], notified_at__isnull=False).count() == 3


def test_a_burst_that_goes_on_is_mailed_once_it_is_over(alice_run, mailoutbox, settings):
    settings.RUN_NOTIFY_DELAY_SECONDS = 20
    older, last = ended_runs(alice_run, 30, 12)  # the older is due, but the burst goes on

    assert runs_notify() == 0
    Run.objects.filter(pk=last.pk).update(finished_at=timezone.now() - timedelta(seconds=21))
    assert runs_notify() == 1
    [mail] = mailoutbox
    assert f"/runs/{older.pk}/" in mail.body and f"/runs/{last.pk}/" in mail.body


def test_a_run_whose_end_was_seen_ends_the_burst_and_a_later_burst_has_its_own(alice_run, mailoutbox, settings):
    settings.RUN_NOTIFY_DELAY_SECONDS = 20
    first, seen, apart = ended_runs(alice_run, 400, 390, 100)
    Run.objects.filter(pk=seen.pk).update(final_seen_at=timezone.now())  # its page showed the end

    assert runs_notify() == 2

    assert [m.subject for m in mailoutbox] == ["Clear Teams cache on LAPTOP-ALICE: Accepted by Nexthink"] * 2
    assert f"/runs/{first.pk}/" in mailoutbox[0].body and f"/runs/{seen.pk}/" not in mailoutbox[0].body
    assert f"/runs/{apart.pk}/" in mailoutbox[1].body


def test_each_employees_burst_goes_to_them(alice_run, bob, mailoutbox, settings):
    settings.RUN_NOTIFY_DELAY_SECONDS = 20
    mine, theirs = ended_runs(alice_run, 30, 25)
    Run.objects.filter(pk=theirs.pk).update(user=bob)

    assert runs_notify() == 2

    assert sorted(m.to[0] for m in mailoutbox) == ["alice@corp.example", bob.email]
    [to_bob] = [m for m in mailoutbox if m.to == [bob.email]]
    assert f"/runs/{theirs.pk}/" in to_bob.body and f"/runs/{mine.pk}/" not in to_bob.body


def test_a_burst_whose_send_fails_is_not_tried_again(alice_run, mailoutbox, monkeypatch, settings):
    settings.RUN_NOTIFY_DELAY_SECONDS = 20
    runs = ended_runs(alice_run, 30, 25)

    def smtp_down(*args, **kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr("actions.runs.notify.send_mail", smtp_down)
    assert runs_notify() == 0
    monkeypatch.undo()

    assert runs_notify() == 0  # claimed: at most once
    assert Run.objects.filter(pk__in=[r.pk for r in runs], notified_at__isnull=False).count() == 2
    assert mailoutbox == []
