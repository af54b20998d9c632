"""A run's words in templates: {{ run.pk|run_reference }}, {{ run.status|status_label }}."""

from django import template

from actions.runs.wording import status_label as _status_label
from actions.uids import run_reference as _run_reference

register = template.Library()


@register.filter
def run_reference(run_id) -> str:
    return _run_reference(run_id)


@register.filter
def status_label(status: str) -> str:
    return _status_label(status)
