"""Reads of runs: only ever the runs made for the signed-in employee."""

from django.db.models import QuerySet

from actions.models import Run


def runs_of(user) -> QuerySet[Run]:
    """The runs made for this user, newest first: the only runs an employee may ever see."""
    return Run.objects.filter(user=user).order_by("-created_at")
