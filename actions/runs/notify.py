"""Telling employees when a run ends while they are not watching its page, and asking whether it helped."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage, send_mail
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.db.models.functions import Now
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext

from actions import broker, metrics
from actions.models import Preferences, Run
from actions.runs.states import REACHED_DEVICE
from actions.runs.wording import status_label, status_summary
from actions.sql import Constant

log = logging.getLogger("actions.runs")


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


# A run that ended longer ago than this and was never mailed is not mailed any more (a bound on what
# one pass reads, e.g. after a day without a worker).
BURST_LOOKBACK = timedelta(days=1)
# Runs one pass reads at most; a pass that reads this many leaves its last employee to the next pass.
NOTIFY_BATCH = 2000


def runs_notify() -> int:
    """The reaper's pass: mail employees about their runs that ended while they were away. How many e-mails.

    One e-mail per burst: an employee's runs whose page did not show the end, each ended less than
    RUN_NOTIFY_DELAY_SECONDS after the one before, mailed together once the last of them ended that
    long ago (by then an open page would have shown it; a run whose end the employee saw on its page
    is them being there, so it ends a burst). The database is the truth: one indexed read of such
    runs per pass (none, in the usual case of every page open to the end), and no task per run that
    can be lost or cost a worker's time only to find the page showed the end.

    At most once per run: a run goes into the e-mail whose claim sets its ``notified_at`` (a
    conditional update per run), and a pass that finds it set leaves it out. A send that fails after
    the claim is not tried again: the mail server may have taken the message before the error, and
    a lost e-mail costs less than a double one (the run page and "My runs" show the end either way).
    """
    if not mail_configured():
        return 0
    rows = list(_unseen_ends())
    if len(rows) == NOTIFY_BATCH and rows[0][1] != rows[-1][1]:  # the last employee's may go on: next pass
        rows = [row for row in rows if row[1] != rows[-1][1]]
    return sum(_mail_burst(burst) for burst in _due_bursts(rows))


def _unseen_ends():
    """(run, employee, ended, due) of the runs that ended unseen and unmailed, of employees who want mail."""
    gap = timedelta(seconds=settings.RUN_NOTIFY_DELAY_SECONDS)
    return (
        Run.objects.filter(
            # The partial index run_unseen_end holds these runs only (the page shows most ends).
            notified_at__isnull=True,
            final_seen_at__isnull=True,
            finished_at__gte=Now() - BURST_LOOKBACK,
            user__is_active=True,
        )
        .exclude(user__email="")
        .exclude(user__preferences__email_when_run_ends=False)
        .annotate(due=ExpressionWrapper(Q(finished_at__lte=Now() - gap), output_field=BooleanField()))
        .order_by("user_id", "finished_at", "pk")
        .values_list("pk", "user_id", "finished_at", "due")[:NOTIFY_BATCH]
    )


def _due_bursts(rows) -> list[list]:
    """The runs of each burst whose last run ended long enough ago, from rows sorted by employee and end."""
    gap = timedelta(seconds=settings.RUN_NOTIFY_DELAY_SECONDS)
    bursts: list[list] = []
    current: list = []
    for row in rows:
        if current and (row[1] != current[-1][1] or row[2] - current[-1][2] > gap):
            bursts.append(current)
            current = []
        current.append(row)
    if current:
        bursts.append(current)
    return [[pk for pk, *_ in burst] for burst in bursts if burst[-1][3]]


def _mail_burst(pks: list) -> bool:
    """Claim the burst's runs that no other pass claimed, and mail those in one e-mail. True if sent."""
    claimed = [
        pk
        for pk in pks  # the oldest first
        if Run.objects.filter(pk=pk, notified_at__isnull=True, final_seen_at__isnull=True).update(
            notified_at=timezone.now()
        )
    ]
    if not claimed:
        return False  # another pass mailed them, or their page showed the end meanwhile
    runs = list(Run.objects.select_related("user").filter(pk__in=claimed).order_by("finished_at", "pk"))
    user = runs[0].user
    try:
        with translation.override(mail_language(user)):  # the employee's language, dates included
            subject, body = message_about(runs)
        send_mail(subject, body, None, [user.email], fail_silently=False)
    except Exception:  # SMTP and socket errors alike; the claims stay (at most once, see above)
        log.warning("runs %s: their e-mail could not be sent; not tried again", _ids(claimed), exc_info=True)
        metrics.email_sent(ok=False)
        return False
    log.info("runs %s: one e-mail sent to their employee", _ids(claimed))
    metrics.email_sent(ok=True)
    return True


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
