"""The employee's side of a run's end: whether their page saw it, and "Did this fix it?"."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext

from actions.models import Run, max_length
from actions.runs.states import REACHED_DEVICE, is_final

COMMENT_MAX_LENGTH = max_length(Run, "feedback_comment")


class FeedbackClosed(Exception):
    """The run cannot take an answer (it did not reach the device, or the time to answer is over)."""


def feedback_open(run: Run) -> bool:
    """A run that reached the device, once final, can be answered (and the answer changed) for a while."""
    if run.status not in REACHED_DEVICE or run.finished_at is None:
        return False
    return timezone.now() - run.finished_at <= timedelta(days=settings.RUN_FEEDBACK_DAYS)


def run_feedback(*, run: Run, fixed: bool, comment: str = "") -> None:
    """Store the employee's answer (the view has checked the run is theirs)."""
    if not feedback_open(run):
        raise FeedbackClosed(gettext("This run can no longer be answered."))
    Run.objects.filter(pk=run.pk).update(fixed=fixed, feedback_comment=comment[:COMMENT_MAX_LENGTH], feedback_at=Now())


def mark_final_seen(run: Run) -> None:
    """The employee's page shows this run as final: no e-mail needed (notify.py)."""
    if is_final(run.status) and run.final_seen_at is None:
        Run.objects.filter(pk=run.pk, final_seen_at__isnull=True).update(final_seen_at=Now())
