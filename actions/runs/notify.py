"""Telling employees when a run ends while they are not watching its page, and asking whether it helped."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage, send_mail
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext

from actions import broker, metrics
from actions.compiled import compiled_rows
from actions.models import Preferences, Run
from actions.runs.states import FINAL, REACHED_DEVICE, is_final
from actions.runs.wording import status_label, status_summary
from actions.sql import Constant

log = logging.getLogger("actions.runs")


def schedule(run_id) -> None:
    """Once the run's end is committed, look again in a moment: by then an open page has shown it.

    Without a mailer (no EMAIL_URL) nothing is scheduled: a task per run that can only do nothing.
    """
    if not mail_configured():
        return

    # The broker down: the run is final either way; only the e-mail is lost.
    transaction.on_commit(
        lambda: broker.try_send(
            "actions.tasks.notify_run_ended",
            str(run_id),
            countdown=settings.RUN_NOTIFY_DELAY_SECONDS,
            what=f"run {run_id}'s e-mail",
        )
    )


def mail_configured() -> bool:
    return "default" in settings.MAILERS  # set from EMAIL_URL; without it the portal sends no e-mail


def wants_mail(user, *, preferences_read: bool = False) -> bool:
    """`preferences_read`: the caller read the user with their preferences (select_related)."""
    if not mail_configured():
        return False
    if preferences_read:
        preferences = getattr(user, "preferences", None)  # None: no row (the defaults)
    else:
        preferences = Preferences.objects.filter(user=user).first()
    return bool(user.is_active and user.email and (preferences is None or preferences.email_when_run_ends))


# A burst is never followed further back than this (a bound on what one task reads).
BURST_LOOKBACK = timedelta(days=1)


def run_notify(*, run_id) -> bool:
    """Mail the employee about their runs that ended while they were away: one e-mail per burst. True if sent.

    A burst: the employee's runs that ended each less than RUN_NOTIFY_DELAY_SECONDS (the task's own
    delay) after the one before. Each run's task comes that long after its end, so by then every run
    of the burst that would follow it has ended: the task of a run followed by another one leaves the
    e-mail to that one's task, and the task of the burst's last run mails every run of the burst whose
    page did not show its end and that no e-mail told of yet (its own run may be neither).

    At most once per run: a run goes into the e-mail whose delivery sets its ``notified_at`` (a
    conditional update per run), and another delivery, or a task of the same burst, finds it set. A
    send that fails after the claim is not tried again: the mail server may have taken the message
    before the error, and a lost e-mail costs less than a double one (the run page and "My runs" show
    the end either way).
    """
    # The employee's preferences in the same read (one row or none).
    run = Run.objects.select_related("user", "user__preferences").filter(pk=run_id).first()
    if run is None or not is_final(run.status) or run.finished_at is None:
        return False
    if not wants_mail(run.user, preferences_read=True):
        return False
    gap = timedelta(seconds=settings.RUN_NOTIFY_DELAY_SECONDS)
    ended = Run.objects.filter(user=run.user_id, status__in=sorted(FINAL), finished_at__isnull=False)
    # Compiled once per process (actions/compiled.py): every run that ends asks it.
    if compiled_rows(_ended_later, run.user_id, run.finished_at, run.finished_at + gap, run.finished_at, run.pk):
        return False  # the burst goes on: the later run's task mails this one with it
    burst = []
    previous = run.finished_at
    recent = ended.filter(finished_at__lte=run.finished_at, finished_at__gte=run.finished_at - BURST_LOOKBACK)
    for other in recent.order_by("-finished_at", "-pk").only("pk", "finished_at", "notified_at", "final_seen_at"):
        ended_at = other.finished_at or previous  # never None (the query asks for an end): for the types
        if other.pk != run.pk and previous - ended_at > gap:
            break
        previous = ended_at
        if other.notified_at is None and other.final_seen_at is None:
            burst.append(other.pk)
    claimed = [
        pk
        for pk in reversed(burst)  # the oldest first
        if Run.objects.filter(pk=pk, notified_at__isnull=True, final_seen_at__isnull=True).update(
            notified_at=timezone.now()
        )
    ]
    if not claimed:
        return False  # each was mailed, or its page showed the end: nothing left to tell
    runs = list(Run.objects.select_related("user").filter(pk__in=claimed).order_by("finished_at", "pk"))
    try:
        with translation.override(mail_language(run.user)):  # the employee's language, dates included
            subject, body = message_about(runs)
        send_mail(subject, body, None, [run.user.email], fail_silently=False)
    except Exception:  # SMTP and socket errors alike; the claims stay (at most once, see above)
        log.warning("runs %s: their e-mail could not be sent; not tried again", _ids(claimed), exc_info=True)
        metrics.email_sent(ok=False)
        return False
    log.info("runs %s: one e-mail sent to their employee", _ids(claimed))
    metrics.email_sent(ok=True)
    return True


def _ended_later(user_id: int, after, until, same_time, run_id):
    """The user's runs that ended after `after` (at most `until`), or at `same_time` and after `run_id`."""
    ended = Run.objects.filter(user_id=user_id, status__in=sorted(FINAL), finished_at__isnull=False)
    later = Q(finished_at__gt=after, finished_at__lte=until) | Q(finished_at=same_time, pk__gt=run_id)
    return ended.filter(later).values_list("pk")[:1]


def _ids(pks) -> str:
    return ", ".join(str(pk) for pk in pks)


def message_about(runs: list[Run]) -> tuple[str, str]:
    """The subject and body of the e-mail about one run, or about a burst of them."""
    items = [
        {
            "run": run,
            "title": status_label(run.status),
            "summary": status_summary(run),
            "link": settings.PORTAL_BASE_URL + run.get_absolute_url(),
            "ask_feedback": run.status in REACHED_DEVICE,
        }
        for run in runs
    ]
    context = {
        **items[0],
        "runs": items,
        "user": runs[0].user,
        "preferences": settings.PORTAL_BASE_URL + reverse("preferences"),
        "PORTAL_NAME": settings.PORTAL_NAME,
        "SERVICE_DESK": {
            "phone": settings.SERVICE_DESK_PHONE,
            "chat_url": settings.SERVICE_DESK_CHAT_URL,
            "hours": settings.SERVICE_DESK_HOURS,
        },
    }
    if len(runs) == 1:
        run = runs[0]
        subject = gettext("%(action)s on %(device)s: %(status)s") % {
            "action": run.action_name,
            "device": run.device_name or run.device_uid,
            "status": context["title"],
        }
        return subject, render_to_string("actions/email/run_ended.txt", context)
    subject = ngettext("%(count)d of your actions ended", "%(count)d of your actions ended", len(runs)) % {
        "count": len(runs)
    }
    return subject, render_to_string("actions/email/runs_ended.txt", context)


def mail_language(user) -> str:
    """The language of e-mails to this employee, who has no browser to ask: the one they chose on the
    Preferences page, else the portal's default (README "Languages")."""
    code = Preferences.objects.filter(user=user).values_list("language", flat=True).first() or ""
    return code if code in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


# --- Approvers: a request waits for them ---------------------------------------------------------


def approvers_schedule(run_id) -> None:
    """Once the waiting run is committed, e-mail its approvers (a task; nothing without a mailer)."""
    if not mail_configured():
        return
    transaction.on_commit(
        lambda: broker.try_send("actions.tasks.notify_approvers", str(run_id), what=f"run {run_id}'s approvers")
    )


def approvers_notify(*, run_id) -> int:
    """E-mail the approvers of a run waiting for approval, once (the claim, as run_notify's). How many."""
    run = Run.objects.select_related("user", "approver_group").filter(pk=run_id).first()
    if run is None or run.status != Run.Status.WAITING_APPROVAL or run.approver_group is None:
        return 0
    emails = sorted(
        {
            email
            for email in run.approver_group.user_set.filter(is_active=True)
            .exclude(pk=run.user_id)
            .values_list("email", flat=True)
            if email
        }
    )
    # The claim, also when there is nobody to mail: the sweep then does not look at it again.
    if not Run.objects.filter(pk=run.pk, approvers_notified_at__isnull=True).update(
        approvers_notified_at=timezone.now()
    ):
        return 0
    if not emails:
        log.warning("run %s waits for approval, and none of its approvers has an e-mail address", run.pk)
        return 0
    person = run.user.get_full_name()
    employee = f"{person} ({run.user.get_username()})" if person else run.user.get_username()
    context = {"run": run, "employee": employee, "link": settings.PORTAL_BASE_URL + reverse("approvals")}
    message = EmailMessage(
        gettext("Approval needed: %(action)s for %(employee)s") % {"action": run.action_name, "employee": employee},
        render_to_string("actions/email/approval_needed.txt", context),
        None,
        bcc=emails,
    )
    try:
        message.send(fail_silently=False)
    except Exception:  # at most once, as run_notify
        log.warning("run %s: the approvers' e-mail could not be sent; not tried again", run.pk, exc_info=True)
        return 0
    log.info("run %s: %s approver(s) e-mailed", run.pk, len(emails))
    return len(emails)


SWEEP_BATCH = 20  # e-mails per reaper pass: a slow mail server delays the pass by this many sends at most


def approvers_sweep() -> int:
    """The reaper's pass: e-mail the approvers of requests whose task never ran (a broker that lost it).

    The database is the truth: a request still waiting, RUN_REQUEUE_AFTER_SECONDS old and not yet
    claimed (``approvers_notified_at``), is mailed here, by the same claim as the task's, so whichever
    of the two comes first sends, once. How many requests were mailed.
    """
    if not mail_configured():
        return 0
    lost = Now() - timedelta(seconds=settings.RUN_REQUEUE_AFTER_SECONDS)
    # The status as a literal: PostgreSQL's generic plan then reads the partial index of waiting requests.
    due = Run.objects.filter(
        status=Constant(Run.Status.WAITING_APPROVAL),
        approval_expires_at__gt=Now(),
        approvers_notified_at__isnull=True,
        approver_group__isnull=False,
        created_at__lt=lost,
    )
    pks = list(due.order_by("approval_expires_at").values_list("pk", flat=True)[:SWEEP_BATCH])
    mailed = sum(1 for pk in pks if approvers_notify(run_id=pk))
    if mailed:
        log.info("approvers' sweep: %s request(s) whose e-mail task was lost mailed now", mailed)
    return mailed
