"""Closing the loop: "Did this fix it?", and an e-mail when a run ends after its page was closed."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from actions.models import Preferences, Run
from actions.runs.dispatch import run_dispatch
from actions.runs.notify import run_notify
from actions.runs.submit import run_submit
from actions.tasks import notify_run_ended
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
def test_a_run_that_ends_schedules_a_look_at_whether_to_mail(
    alice_run, use_simulator, broker_queue, django_capture_on_commit_callbacks, settings
):
    import base64
    import json
    from pathlib import Path

    with django_capture_on_commit_callbacks(execute=True):
        run_dispatch(run_id=alice_run.pk)

    tasks = []
    for message in (Path(settings.BROKER_DIR) / "queue").glob("*.msg"):
        payload = json.loads(message.read_text())
        tasks.append((payload["headers"]["task"], json.loads(base64.b64decode(payload["body"]))[0]))
    assert tasks == [("actions.tasks.notify_run_ended", [str(alice_run.pk)])]


def test_without_a_mailer_a_run_that_ends_schedules_nothing(
    alice_run, use_simulator, broker_queue, django_capture_on_commit_callbacks, settings
):
    from pathlib import Path

    settings.MAILERS = {}  # no EMAIL_URL: no e-mail can be sent, so no task per run to find that out

    with django_capture_on_commit_callbacks(execute=True):
        run_dispatch(run_id=alice_run.pk)

    assert Run.objects.get(pk=alice_run.pk).status == Run.Status.SENT
    assert list((Path(settings.BROKER_DIR) / "queue").glob("*.msg")) == []


def test_it_mails_the_employee_when_the_page_did_not_show_the_end(alice_run, mailoutbox, settings):
    settings.PORTAL_BASE_URL = "https://fix.corp.example"
    finish(alice_run)

    assert run_notify(run_id=alice_run.pk) is True

    [mail] = mailoutbox
    assert mail.to == ["alice@corp.example"]
    assert mail.subject == "Clear Teams cache on LAPTOP-ALICE: Accepted by Nexthink"
    assert f"https://fix.corp.example/runs/{alice_run.pk}/#feedback" in mail.body
    assert "Did this fix your problem?" in mail.body and "https://fix.corp.example/preferences/" in mail.body


def test_the_task_delivered_twice_sends_one_mail(alice_run, mailoutbox):
    finish(alice_run)

    notify_run_ended(str(alice_run.pk))
    notify_run_ended(str(alice_run.pk))  # the broker delivered it again

    assert len(mailoutbox) == 1
    assert Run.objects.get(pk=alice_run.pk).notified_at is not None


def test_a_second_delivery_that_read_the_run_before_the_first_sent_sends_nothing(alice_run, mailoutbox, monkeypatch):
    """Two workers at once: both read the run unnotified; only the one whose claim lands sends."""
    finish(alice_run)
    real_filter = Run.objects.filter
    second = []

    def filter_then_race(*args, **kwargs):
        if "notified_at__isnull" in kwargs and not second:  # the first is about to claim...
            second.append(None)
            second[0] = run_notify(run_id=alice_run.pk)  # ...and the second gets in first
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(Run.objects, "filter", filter_then_race)

    first = run_notify(run_id=alice_run.pk)

    assert (first, second) == (False, [True])
    assert len(mailoutbox) == 1


def test_a_send_that_fails_after_the_claim_is_not_tried_again(alice_run, mailoutbox, monkeypatch):
    finish(alice_run)

    def smtp_down(*args, **kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr("actions.runs.notify.send_mail", smtp_down)
    assert run_notify(run_id=alice_run.pk) is False
    monkeypatch.undo()

    assert run_notify(run_id=alice_run.pk) is False  # at most once: the server may have taken the first
    assert mailoutbox == []


def test_no_mail_when_the_page_showed_the_end(client, alice, alice_run, mailoutbox, django_assert_num_queries):
    finish(alice_run)
    client.force_login(alice)
    client.get(reverse("run_status", args=[alice_run.pk]))  # the open page polls and shows it

    # The common case of every run watched to its end: the run with its employee and their
    # preferences in one read, whether the burst goes on, the burst's runs; nothing to mail.
    with django_assert_num_queries(3):
        assert run_notify(run_id=alice_run.pk) is False
    assert mailoutbox == []


def test_whether_the_burst_goes_on_is_asked_with_a_query_compiled_once(alice_run, mailoutbox, monkeypatch):
    from actions import compiled
    from actions.runs.notify import _ended_later

    monkeypatch.setattr(compiled, "_compiled", {})
    finish(alice_run)

    assert run_notify(run_id=alice_run.pk) is True
    assert _ended_later in {build for build, *_ in compiled._compiled}


def test_no_mail_for_an_employee_who_opted_out(client, alice, alice_run, mailoutbox):
    client.force_login(alice)
    response = client.post(reverse("preferences"), {})  # the box unticked
    assert response.status_code == 302
    assert Preferences.objects.get(user=alice).email_when_run_ends is False
    finish(alice_run)

    assert run_notify(run_id=alice_run.pk) is False
    assert mailoutbox == []


def test_a_failed_run_mail_does_not_ask_whether_it_fixed_anything(alice_run, mailoutbox):
    finish(alice_run, Status.FAILED, error_message="Nothing was sent. Please contact IT.")

    run_notify(run_id=alice_run.pk)

    assert "Did this fix" not in mailoutbox[0].body and "Nothing was sent. Please contact IT." in mailoutbox[0].body


def test_no_mail_before_the_run_ends(alice_run, mailoutbox):
    assert run_notify(run_id=alice_run.pk) is False
    assert mailoutbox == []


def test_no_mail_without_a_mailer(alice_run, mailoutbox, settings):
    settings.MAILERS = {}  # production without EMAIL_URL
    finish(alice_run)

    assert run_notify(run_id=alice_run.pk) is False


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

    sent = [run_notify(run_id=run.pk) for run in reversed(runs)]  # the tasks, in any order
    sent += [run_notify(run_id=run.pk) for run in runs]  # and each delivered again

    assert sent.count(True) == 1
    [mail] = mailoutbox
    assert mail.subject == "3 of your actions ended"
    assert all(f"/runs/{run.pk}/#feedback" in mail.body for run in runs)
    assert Run.objects.filter(pk__in=[r.pk for r in runs], notified_at__isnull=False).count() == 3


def test_a_burst_is_mailed_even_when_its_last_run_was_seen_and_a_later_burst_has_its_own(
    alice_run, mailoutbox, settings
):
    settings.RUN_NOTIFY_DELAY_SECONDS = 20
    first, seen, apart = ended_runs(alice_run, 400, 390, 100)
    Run.objects.filter(pk=seen.pk).update(final_seen_at=timezone.now())  # its page showed the end

    for run in (first, seen, apart):
        run_notify(run_id=run.pk)

    # The first run's task left it to the seen run's, which mailed it alone: it was not lost.
    assert [m.subject for m in mailoutbox] == ["Clear Teams cache on LAPTOP-ALICE: Accepted by Nexthink"] * 2
    assert f"/runs/{first.pk}/" in mailoutbox[0].body and f"/runs/{seen.pk}/" not in mailoutbox[0].body
    assert f"/runs/{apart.pk}/" in mailoutbox[1].body


def test_a_burst_whose_send_fails_is_not_tried_again(alice_run, mailoutbox, monkeypatch, settings):
    settings.RUN_NOTIFY_DELAY_SECONDS = 20
    runs = ended_runs(alice_run, 30, 25)

    def smtp_down(*args, **kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr("actions.runs.notify.send_mail", smtp_down)
    assert run_notify(run_id=runs[-1].pk) is False
    monkeypatch.undo()

    assert [run_notify(run_id=run.pk) for run in runs] == [False, False]  # claimed: at most once
    assert mailoutbox == []
